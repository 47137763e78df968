// server.ts: Better Auth's routes under /api/auth, on a plain Node server.
// Run it with: npx tsx server.ts
import { createServer } from "node:http";
import { toNodeHandler } from "better-auth/node";
import { auth } from "./auth";

const handler = toNodeHandler(auth);
const port = Number(process.env.PORT ?? 3000);

createServer((req, res) => {
  if (req.url?.startsWith("/api/auth/")) {
    void handler(req, res);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" }).end("not found");
}).listen(port, () => console.log(`Better Auth on http://localhost:${port}/api/auth`));
