// Password hashes as Node apps store them, for the Python tests: made by bcryptjs, the
// bcrypt most Node and Mongoose apps use, with its own salts.
//
// stdin:  {"passwords": ["..."], "rounds": 10, "prefix": "2a" | "2b"}
// stdout: ["$2a$10$...", ...], in order
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const bcrypt = require("bcryptjs");

const { passwords, rounds, prefix } = JSON.parse(readFileSync(0, "utf8"));
if (prefix !== "2a" && prefix !== "2b") throw new Error(`unknown bcrypt prefix: ${prefix}`);
const hashes = passwords.map((password) => {
  // bcryptjs 3 writes $2b$ salts; its earlier versions (and most stored hashes) wrote $2a$.
  // The algorithm is the same: bcryptjs hashes a salt of either kind, and keeps its prefix.
  const salt = bcrypt.genSaltSync(rounds).replace(/^\$2b\$/, `$${prefix}$`);
  return bcrypt.hashSync(password, salt);
});
process.stdout.write(JSON.stringify(hashes));
