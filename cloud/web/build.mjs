// Copy the front-end dependencies from node_modules into dist/vendor (served at /vendor/ by the cloud).
// Runs as `postinstall` of `npm ci`; dist/ is not committed. No bundler: the pages are plain ES modules.
import { copyFileSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "dist", "vendor");
mkdirSync(vendor, { recursive: true });

const files = [
  ["echarts/dist/echarts.min.js", "echarts.min.js"],
  ["echarts/LICENSE", "echarts.LICENSE.txt"],
];
const manifest = {};
for (const [from, to] of files) {
  copyFileSync(join(here, "node_modules", from), join(vendor, to));
  const pkg = from.split("/")[0];
  manifest[pkg] = JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"), "utf8")).version;
}
writeFileSync(join(vendor, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`console assets copied to ${vendor}:`, manifest);
