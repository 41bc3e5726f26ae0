// `npm run gen`: regenerates src/schema.ts from a server's /openapi.json.
// DISPATCHD_URL names a running server; without it, the binary
// (DISPATCHD_BIN, else target/debug/dispatchd) is started on a free port
// for the occasion and stopped after.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SCHEMA_FILE, generate } from "./schema.mjs";
import { startServer } from "./server.mjs";

let url = process.env.DISPATCHD_URL;
let server = null;
try {
  if (!url) {
    server = await startServer();
    url = server.url;
  }
  writeFileSync(SCHEMA_FILE, await generate(url));
  console.log(`wrote ${fileURLToPath(SCHEMA_FILE)} from ${url}/openapi.json`);
} finally {
  await server?.stop();
}
