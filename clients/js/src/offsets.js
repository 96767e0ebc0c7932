// Resume by offsets (docs/protocol.md, Channels): a topic with history numbers its publications
// 1, 2, 3, ... without holes, so a channel keeps a watermark, the highest offset such that it has
// every publication up to it, and rejoins with `since` = the watermark.
//   - A publication already delivered (at or below the watermark, or seen above it) is dropped.
//   - One that arrives ahead of a hole (an offset still missing below it) is delivered at once and
//     remembered; when the hole fills, the watermark moves past both.
//   - A hole still open holeTimeout ms after the watermark last moved calls onHole: the channel
//     rejoins from the watermark, and the server sends everything after it.
export class Offsets {
  constructor(holeTimeout, onHole) {
    this.holeTimeout = holeTimeout;
    this.onHole = onHole;
    this.watermark = null;  // null: nothing known yet (first join, or starting over)
    this.seen = new Set();  // offsets delivered above the watermark
    this.timer = null;
  }

  // True when `offset` is new: deliver it.
  accept(offset) {
    if ((this.watermark !== null && offset <= this.watermark) || this.seen.has(offset)) return false;
    this.seen.add(offset);
    this.advance();
    return true;
  }

  // The join reply's offset: the server sent everything up to it.
  joined(offset) {
    if (Number.isInteger(offset) && (this.watermark === null || offset > this.watermark)) this.watermark = offset;
    this.advance();
  }

  // The server could not resume (too far behind, unknown since): recent history follows, start over.
  reset() {
    this.seen.clear();
    this.watermark = null;
    this.stop();
  }

  // Not on a live join: no hole can fill, and the rejoin resumes from the watermark anyway.
  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  advance() {
    const before = this.watermark;
    if (this.watermark !== null) {
      while (this.seen.has(this.watermark + 1)) this.watermark += 1;
      for (const offset of this.seen) if (offset <= this.watermark) this.seen.delete(offset);
    }
    const hole = this.watermark !== null && this.seen.size > 0;
    if (!hole || this.watermark !== before) this.stop();
    if (hole && !this.timer) this.timer = setTimeout(() => { this.timer = null; this.onHole(); }, this.holeTimeout);
  }
}
