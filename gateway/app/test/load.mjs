// Loads a TypeScript module of src/ for a test: esbuild bundles it (types
// erased, no emit on disk) and node imports the result from a data: URL.
import * as esbuild from "esbuild";

/** @param {string} path relative to gateway/app, e.g. "src/format.ts" */
export async function load(path) {
  const r = await esbuild.build({
    entryPoints: [new URL(`../${path}`, import.meta.url).pathname],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["source"],
    write: false,
    logLevel: "silent",
  });
  return import(`data:text/javascript;base64,${Buffer.from(r.outputFiles[0].text).toString("base64")}`);
}
