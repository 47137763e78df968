// Runs the real @auth/mongodb-adapter against a MongoDB database, for the Python tests.
//
// stdin: {"url": "mongodb://...", "database": "name", "ops": [op, ...]}
//   op: {"op": "<adapter method>", "args": [...]}, run one after another, in order.
// stdout: a list with one result per op: {"ok": true, "value": ...} or
//   {"ok": false, "error": "..."}.
//
// JSON has no dates or ObjectIds, so both directions use small wrappers:
//   {"$date": "<ISO 8601>"}  a Date (in arguments and results)
//   {"$oid": "<hex>"}        an ObjectId (results only)
//   {"$result": [i, "key"]}  in arguments: field "key" of the value op i returned,
//                            e.g. the id of a user created earlier in the batch.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

// Packages live in tests/node, not next to this script. The adapter is ESM-only (its
// exports have no "require" entry), so its entry point is read from its package.json.
const nodeModules = new URL("../node/node_modules/", import.meta.url);
const require = createRequire(new URL("../node/package.json", import.meta.url));

async function importEsm(name) {
  const root = new URL(`${name}/`, nodeModules);
  const manifest = JSON.parse(await readFile(new URL("package.json", root), "utf8"));
  const entry = manifest.exports?.["."]?.import ?? manifest.module ?? manifest.main;
  return import(new URL(entry, root).href);
}

// The same mongodb module the adapter imports, so ObjectId checks agree.
const { MongoClient, ObjectId } = require("mongodb");
const { MongoDBAdapter } = await importEsm("@auth/mongodb-adapter");

function revive(value, results) {
  if (Array.isArray(value)) return value.map((item) => revive(item, results));
  if (value === null || typeof value !== "object") return value;
  if (typeof value.$date === "string") return new Date(value.$date);
  if (Array.isArray(value.$result)) {
    const [index, key] = value.$result;
    return results[index].value[key];
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, revive(item, results)]),
  );
}

function encode(value) {
  if (value instanceof Date) return { $date: value.toISOString() };
  if (value instanceof ObjectId) return { $oid: value.toHexString() };
  if (Array.isArray(value)) return value.map(encode);
  if (value === null || value === undefined) return null;
  if (typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, encode(item)]));
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);

const client = new MongoClient(request.url, { serverSelectionTimeoutMS: 10_000 });
const adapter = MongoDBAdapter(client, { databaseName: request.database });
const results = [];
try {
  for (const { op, args = [] } of request.ops) {
    try {
      if (typeof adapter[op] !== "function") throw new Error(`unknown op ${op}`);
      const value = await adapter[op](...revive(args, results));
      results.push({ ok: true, value: value ?? null });
    } catch (error) {
      results.push({ ok: false, error: `${error.name}: ${error.message}` });
    }
  }
} finally {
  await client.close();
}
process.stdout.write(JSON.stringify(results.map(encode)));
