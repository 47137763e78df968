// next.config.ts: the browser asks this origin for /auth/*; Next.js passes it to Python.
import type { NextConfig } from "next";

const pythonService = process.env.PYTHON_AUTH_URL ?? "http://127.0.0.1:8000";

const nextConfig: NextConfig = {
  async rewrites() {
    return [{ source: "/auth/:path*", destination: `${pythonService}/auth/:path*` }];
  },
};

export default nextConfig;
