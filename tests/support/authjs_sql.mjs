// Runs a real Auth.js SQL adapter against a database, for the Python tests.
//
// stdin: {"mode": "pg" | "drizzle-pg" | "drizzle-sqlite", "url": "...", "timeZone": "...",
//         "sql": "...", "ops": [op, ...]}
//   mode: @auth/pg-adapter on node-postgres, or @auth/drizzle-adapter with its default
//     tables (defineTables) on node-postgres or better-sqlite3.
//   url: a postgresql:// URL, or for drizzle-sqlite the path of the database file.
//   timeZone (optional): the process's time zone, so that a date read or written in
//     local time instead of UTC shows.
//   sql (optional): statements run before the ops, as they are (table definitions).
//   op: {"op": "<adapter method>", "args": [...]}, run one after another, in order.
// stdout: a list with one result per op: {"ok": true, "value": ...} or
//   {"ok": false, "error": "..."}.
//
// JSON has no dates, so both directions use small wrappers:
//   {"$date": "<ISO 8601>"}  a Date (in arguments and results)
//   {"$result": [i, "key"]}  in arguments: field "key" of the value op i returned,
//                            e.g. the id of a user created earlier in the batch.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
// Before any date is made: Node reads TZ when it first needs it, and again when it changes.
if (request.timeZone) process.env.TZ = request.timeZone;

// Packages live in tests/node, not next to this script. The adapters are ESM-only (their
// exports have no "require" entry), so their entry points are read from package.json.
const nodeModules = new URL("../node/node_modules/", import.meta.url);
const require = createRequire(new URL("../node/package.json", import.meta.url));

async function importEsm(name, subpath = ".") {
  const root = new URL(`${name}/`, nodeModules);
  const manifest = JSON.parse(await readFile(new URL("package.json", root), "utf8"));
  const target = manifest.exports?.[subpath];
  const entry =
    typeof target === "string"
      ? target
      : (target?.import?.default ?? target?.import ?? target?.default ?? manifest.main);
  return import(new URL(entry, root).href);
}

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
  if (Array.isArray(value)) return value.map(encode);
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return Number(value);
  if (typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, encode(item)]));
}

// The adapter, a function running plain SQL, and one closing the connection.
async function open(mode, url) {
  if (mode === "pg" || mode === "drizzle-pg") {
    // The same pg module the adapters import.
    const { Pool } = require("pg");
    const pool = new Pool({ connectionString: url, max: 2 });
    const run = async (sql) => void (await pool.query(sql));
    const close = () => pool.end();
    if (mode === "pg") {
      const { default: PostgresAdapter } = await importEsm("@auth/pg-adapter");
      return { adapter: PostgresAdapter(pool), run, close };
    }
    const { drizzle } = await importEsm("drizzle-orm", "./node-postgres");
    const { DrizzleAdapter } = await importEsm("@auth/drizzle-adapter");
    return { adapter: DrizzleAdapter(drizzle(pool)), run, close };
  }
  if (mode === "drizzle-sqlite") {
    const Database = require("better-sqlite3");
    const database = new Database(url, { timeout: 5000 });
    database.pragma("foreign_keys = ON");
    const { drizzle } = await importEsm("drizzle-orm", "./better-sqlite3");
    const { DrizzleAdapter } = await importEsm("@auth/drizzle-adapter");
    return {
      adapter: DrizzleAdapter(drizzle(database)),
      run: async (sql) => void database.exec(sql),
      close: async () => database.close(),
    };
  }
  throw new Error(`unknown mode ${mode}`);
}

const { adapter, run, close } = await open(request.mode, request.url);
const results = [];
try {
  if (request.sql) await run(request.sql);
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
  await close();
}
process.stdout.write(JSON.stringify(results.map(encode)));
