// The browser loads the same modules from Django's static files: copy src/ to realtime/static/realtime/client/
// (tests/test_client_package.py fails while the two differ). `npm run sync` after changing src/.
import {copyFileSync, mkdirSync, readdirSync, rmSync} from "node:fs";
import {dirname, join} from "node:path";
import {fileURLToPath} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "src");
const target = join(here, "..", "..", "..", "realtime", "static", "realtime", "client");
rmSync(target, {recursive: true, force: true});
mkdirSync(target, {recursive: true});
for (const name of readdirSync(source).filter((name) => name.endsWith(".js"))) copyFileSync(join(source, name), join(target, name));
console.log(`copied ${source} to ${target}`);
