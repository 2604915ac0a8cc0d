// Generates the TypeScript client from ../../proto (buf + the local protoc-gen-es, offline),
// type-checks the page and bundles it into dist/. Prints nothing on success.
// Usage: node build.mjs   (install-deps.sh and run.mjs call it)
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = dirname(fileURLToPath(import.meta.url));
export const dist = join(root, "dist");

function run(tool, args) {
  const result = spawnSync(join(root, "node_modules/.bin", tool), args, {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.error || result.status !== 0) {
    const why = result.error ? String(result.error) : `exit ${result.status ?? result.signal}`;
    throw new Error(
      `${tool} ${args.join(" ")} failed (${why})\n${result.stdout ?? ""}${result.stderr ?? ""}` +
        (result.error?.code === "ENOENT" ? "\nnode_modules is missing: run `make browser-deps`" : ""),
    );
  }
}

export function build() {
  run("buf", ["generate"]);
  run("tsc", ["-p", "."]);
  mkdirSync(dist, { recursive: true });
  run("esbuild", [
    "app/app.ts",
    "--bundle",
    "--format=esm",
    "--target=es2022",
    "--sourcemap",
    "--log-level=warning",
    `--outfile=${join(dist, "app.js")}`,
  ]);
  copyFileSync(join(root, "app/index.html"), join(dist, "index.html"));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    build();
  } catch (error) {
    console.error(`build: ${error.message}`);
    process.exit(1);
  }
}
