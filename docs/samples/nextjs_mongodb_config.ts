// auth.config.ts: database sessions, in the MongoDB database the Python service uses.
import type { NextAuthConfig } from "next-auth";
import { MongoDBAdapter } from "@auth/mongodb-adapter";
import GitHub from "next-auth/providers/github";
import { MongoClient } from "mongodb";

// The same MONGODB_URL, database name included, as the Python service's.
const client = new MongoClient(process.env.MONGODB_URL as string);

export default {
  adapter: MongoDBAdapter(client),
  session: { strategy: "database" },
  providers: [GitHub], // AUTH_GITHUB_ID and AUTH_GITHUB_SECRET, as in the Python service
  cookies: { sessionToken: { options: { domain: process.env.AUTH_COOKIE_DOMAIN || undefined } } },
} satisfies NextAuthConfig;
