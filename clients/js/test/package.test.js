// The package as a team installs it: its exports resolve, and the types name every export.
import assert from "node:assert/strict";
import {readFileSync} from "node:fs";
import {test} from "node:test";

const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url)));

test("an ES module with no runtime dependencies", () => {
  assert.equal(manifest.type, "module");
  assert.equal(manifest.dependencies, undefined);
  assert.ok(manifest.files.includes("index.d.ts"));
});

test("every export of the module is declared in index.d.ts", async () => {
  const exported = Object.keys(await import(new URL("../" + manifest.exports["."].default, import.meta.url)));
  const declarations = readFileSync(new URL("../" + manifest.exports["."].types, import.meta.url), "utf8");
  const declared = [...declarations.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(exported.sort(), declared.sort());
});
