// The Next.js app's side (lib/auth-adapter.ts): Auth.js's MongoDB adapter on the
// database the Python service uses. auth.ts passes it on: NextAuth({ adapter, ... }).
import { MongoDBAdapter } from "@auth/mongodb-adapter";
import { MongoClient } from "mongodb";

// The same MONGODB_URL as the Python service: the database is the one in its path.
export const client = new MongoClient(process.env.MONGODB_URL!);

export const adapter = MongoDBAdapter(client);
