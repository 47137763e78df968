// How Auth.js reads a Cookie header, for the Python tests: the parser @auth/core runs on
// every request (its own copy of the `cookie` package, lib/vendored/cookie.js, which the
// package does not export), and the session token getToken joins from it.
//
// stdin:  {"headers": ["a=1; a=2", ...], "cookieName": "authjs.session-token"}
// stdout: [{"cookies": {"a": "1"}, "sessionToken": "..." | null}, ...], in order
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const core = dirname(require.resolve("@auth/core"));
const { parse } = await import(pathToFileURL(join(core, "lib", "vendored", "cookie.js")).href);
const { getToken } = await import(pathToFileURL(require.resolve("@auth/core/jwt")).href);

const { headers, cookieName } = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const header of headers) {
  const sessionToken = await getToken({
    req: { headers: { cookie: header } },
    cookieName,
    raw: true,
    logger: { error: () => {}, warn: () => {}, debug: () => {} },
  });
  results.push({ cookies: { ...parse(header) }, sessionToken: sessionToken ?? null });
}
process.stdout.write(JSON.stringify(results));
