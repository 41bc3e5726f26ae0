// `npm run check:schema`: starts the binary (DISPATCHD_BIN, else
// target/debug/dispatchd), generates the types from its /openapi.json and
// fails when they differ from the committed src/schema.ts.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SCHEMA_FILE, generate } from "./schema.mjs";
import { startServer } from "./server.mjs";

const server = await startServer();
let fresh;
try {
  fresh = await generate(server.url);
} finally {
  await server.stop();
}
const committed = readFileSync(SCHEMA_FILE, "utf8");
if (fresh === committed) {
  console.log("src/schema.ts matches the server's /openapi.json");
} else {
  const dir = mkdtempSync(join(tmpdir(), "dispatchd-schema-"));
  const file = join(dir, "schema.ts");
  writeFileSync(file, fresh);
  spawnSync("diff", ["-u", fileURLToPath(SCHEMA_FILE), file], { stdio: "inherit" });
  rmSync(dir, { recursive: true, force: true });
  console.error("clients/js/src/schema.ts is stale: run `npm run gen` in clients/js and commit it");
  process.exit(1);
}
