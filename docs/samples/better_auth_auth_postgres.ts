// auth.ts: the Better Auth app, on PostgreSQL. The Python side reads the same tables.
import { betterAuth } from "better-auth";
import { Pool } from "pg";

export const auth = betterAuth({
  secret: process.env.BETTER_AUTH_SECRET, // the Python side's AuthConfig(secret=...)
  baseURL: process.env.BETTER_AUTH_URL,
  // Better Auth's built-in Kysely adapter; for SQLite: new Database("auth.db") of better-sqlite3
  database: new Pool({ connectionString: process.env.DATABASE_URL }),
  emailAndPassword: { enabled: true },
});
