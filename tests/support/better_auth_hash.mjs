// Better Auth's password hashes, for the Python tests: made and verified by the real
// better-auth, with the hasher its email and password sign-in uses by default
// (better-auth/crypto, which is @better-auth/utils/password's scrypt under Node).
//
// stdin:  {"op": "hash", "passwords": ["..."]}
// stdout: ["<salt hex>:<key hex>", ...], in order
//
// stdin:  {"op": "verify", "checks": [{"hash": "...", "password": "..."}, ...]}
// stdout: one result per check, in order: {"ok": true, "value": true | false}, or
//         {"ok": false, "error": "..."} when Better Auth throws (a hash it cannot read).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const { hashPassword, verifyPassword } = await import(
  pathToFileURL(require.resolve("better-auth/crypto")).href
);

const request = JSON.parse(readFileSync(0, "utf8"));
let output;
if (request.op === "hash") {
  output = await Promise.all(request.passwords.map((password) => hashPassword(password)));
} else if (request.op === "verify") {
  output = await Promise.all(
    request.checks.map(({ hash, password }) =>
      verifyPassword({ hash, password }).then(
        (value) => ({ ok: true, value }),
        (error) => ({ ok: false, error: String(error?.message ?? error) }),
      ),
    ),
  );
} else {
  throw new Error(`unknown op: ${request.op}`);
}
process.stdout.write(JSON.stringify(output));
