// Encodes and decodes session tokens with the real @auth/core, for the Python tests.
//
// stdin: one operation or a list of them; stdout: one result or a list of them, in
// order. A result is {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
//
//   {"op": "encode", "token": {...}, "secret": "s" | ["s", ...], "salt": "...", "maxAge": 60}
//   {"op": "decode", "token": "...", "secret": "s" | ["s", ...], "salt": "..."}
//   {"op": "joseEncrypt", "payload": {...}, "secret": "s", "salt": "...",
//    "header": {"alg": "dir", "enc": "A256GCM", ...}, "keyLength": 32, "kid": true}
//
// joseEncrypt builds tokens Auth.js never issues but must read (or refuse) with jose
// itself: the key is derived the Auth.js way (HKDF with the salt) at keyLength bytes,
// "kid": true adds the key's thumbprint to the header, and "plaintext" (a string) in
// place of "payload" encrypts those exact characters instead of a JSON claims set.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const load = (specifier) => import(pathToFileURL(require.resolve(specifier)).href);

const { encode, decode } = await load("@auth/core/jwt");
const { CompactEncrypt, EncryptJWT, base64url, calculateJwkThumbprint } = await load("jose");
const { hkdf } = await load("@panva/hkdf");

async function joseEncrypt({ payload, plaintext, secret, salt, header, keyLength, kid }) {
  const info = `Auth.js Generated Encryption Key (${salt})`;
  const key = await hkdf("sha256", secret, salt, info, keyLength);
  const protectedHeader = { ...header };
  if (kid) {
    const jwk = { kty: "oct", k: base64url.encode(key) };
    protectedHeader.kid = await calculateJwkThumbprint(jwk, `sha${keyLength << 3}`);
  }
  const builder =
    plaintext === undefined
      ? new EncryptJWT(payload)
      : new CompactEncrypt(new TextEncoder().encode(plaintext));
  return builder.setProtectedHeader(protectedHeader).encrypt(key);
}

async function run(op) {
  switch (op.op) {
    case "encode":
      return encode({ token: op.token, secret: op.secret, salt: op.salt, maxAge: op.maxAge });
    case "decode":
      return decode({ token: op.token, secret: op.secret, salt: op.salt });
    case "joseEncrypt":
      return joseEncrypt(op);
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

async function settle(op) {
  try {
    return { ok: true, value: (await run(op)) ?? null };
  } catch (error) {
    return { ok: false, error: `${error.name}: ${error.message}` };
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const response = Array.isArray(request)
  ? await Promise.all(request.map(settle))
  : await settle(request);
process.stdout.write(JSON.stringify(response));
