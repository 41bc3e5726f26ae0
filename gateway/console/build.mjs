// Bundles the console into dist/ (committed, so `cargo build` needs no
// node): app.js with Leaflet and the world's land outline (world-atlas,
// Natural Earth 1:50m) inlined, the coordinator's screens (src/coord/,
// TypeScript: FullCalendar, uPlot, and @dispatchd/client bundled from its
// TypeScript source, so no build of the library is needed first), app.css
// with Leaflet's and uPlot's styles, and index.html. Reproducible: the same lockfile gives the same bytes, which
// scripts/test.sh checks.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

// OUT: elsewhere than dist/ (scripts/test.sh compares the two).
const out = process.env.OUT || "dist";
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: ["src/app.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  legalComments: "eof",
  // @dispatchd/client's "source" export: its src/*.ts, not a dist/ that a
  // clean checkout does not have.
  conditions: ["source"],
  loader: { ".json": "json" },
  outfile: `${out}/app.js`,
  logLevel: "warning",
});
await esbuild.build({
  entryPoints: ["src/app.css"],
  bundle: true,
  minify: true,
  loader: { ".png": "dataurl", ".svg": "dataurl" },
  outfile: `${out}/app.css`,
  logLevel: "warning",
});
copyFileSync("src/index.html", `${out}/index.html`);
