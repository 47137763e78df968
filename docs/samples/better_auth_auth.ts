// auth.ts: the Better Auth app, on MongoDB. The Python side reads the same database.
import { betterAuth } from "better-auth";
import { mongodbAdapter } from "better-auth/adapters/mongodb";
import { MongoClient } from "mongodb";

// The database named in the URL: mongodb://localhost:27017/app
const client = new MongoClient(process.env.MONGODB_URL!);

export const auth = betterAuth({
  secret: process.env.BETTER_AUTH_SECRET, // the Python side's AuthConfig(secret=...)
  baseURL: process.env.BETTER_AUTH_URL, // where this app is served
  database: mongodbAdapter(client.db(), { client }),
  emailAndPassword: { enabled: true },
  session: {
    expiresIn: 60 * 60 * 24 * 7, // 7 days: BetterAuthStrategy(expires_in=...)
    updateAge: 60 * 60 * 24, // 1 day: BetterAuthStrategy(update_age=...)
    cookieCache: { enabled: true, maxAge: 5 * 60, strategy: "compact" }, // CookieCache(...)
  },
  advanced: {
    cookiePrefix: "better-auth", // BetterAuthStrategy(cookie_prefix=...)
  },
});
