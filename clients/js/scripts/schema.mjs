// Turns a server's GET /openapi.json into the TypeScript of src/schema.ts
// (openapi-typescript), the same way for `npm run gen` and the staleness
// check, so the two can only differ when the server's document does.
import openapiTS, { astToString } from "openapi-typescript";

/** Where the generated types live, relative to the package. */
export const SCHEMA_FILE = new URL("../src/schema.ts", import.meta.url);

const HEADER = `// Generated from dispatchd's GET /openapi.json by openapi-typescript
// (\`npm run gen\` in clients/js). Do not edit: regenerate instead; the test
// command fails when this file no longer matches the server.

`;

/**
 * The generated module for the server at `base`.
 * @param {string} base e.g. http://127.0.0.1:8080
 * @returns {Promise<string>}
 */
export async function generate(base) {
  const res = await fetch(new URL("/openapi.json", base));
  if (!res.ok) throw new Error(`GET ${base}/openapi.json: ${res.status}`);
  const doc = await res.json();
  const ast = await openapiTS(doc, { alphabetize: true });
  return HEADER + astToString(ast);
}
