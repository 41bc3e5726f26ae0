// Bundles the app into dist/ (committed, so `cargo build` needs no node;
// the server embeds every file and serves it at /app/<path>):
//   index.html, app.js (Preact, Leaflet, @dispatchd/client from its source,
//   the world's land outline), app.css, manifest.webmanifest, icons, and
//   sw.js (Workbox) whose precache list names every other file with a
//   content hash. Reproducible: the same lockfile gives the same bytes,
//   which scripts/test.sh checks by building into $OUT and diffing.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const out = process.env.OUT || "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "icons"), { recursive: true });

const common = {
  bundle: true,
  minify: true,
  legalComments: "eof",
  logLevel: "warning",
  charset: "utf8",
};

await esbuild.build({
  ...common,
  entryPoints: ["src/main.tsx"],
  format: "esm",
  target: ["es2020"],
  conditions: ["source"],
  jsx: "automatic",
  jsxImportSource: "preact",
  loader: { ".json": "json" },
  // Only the JSON socket is used: MessagePack stays out of the bundle.
  external: ["@msgpack/msgpack"],
  define: { "process.env.NODE_ENV": '"production"' },
  outfile: join(out, "app.js"),
});
await esbuild.build({
  ...common,
  entryPoints: ["src/app.css"],
  loader: { ".png": "dataurl", ".svg": "dataurl" },
  outfile: join(out, "app.css"),
});
copyFileSync("src/index.html", join(out, "index.html"));
copyFileSync("src/manifest.webmanifest", join(out, "manifest.webmanifest"));
for (const f of readdirSync("src/icons").sort()) copyFileSync(join("src/icons", f), join(out, "icons", f));

// The service worker last: it precaches everything above, each file with
// the hash of its bytes as its revision, so a changed file is fetched anew.
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(join(out, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) walk(rel);
    else files.push(rel);
  }
};
walk("");
const manifest = files.sort().map((rel) => ({
  url: `/app/${rel}`,
  revision: createHash("sha256").update(readFileSync(join(out, rel))).digest("hex").slice(0, 16),
}));
await esbuild.build({
  ...common,
  entryPoints: ["src/sw.ts"],
  format: "iife",
  target: ["es2020"],
  define: {
    "process.env.NODE_ENV": '"production"',
    "self.__WB_MANIFEST": JSON.stringify(manifest),
  },
  outfile: join(out, "sw.js"),
});
