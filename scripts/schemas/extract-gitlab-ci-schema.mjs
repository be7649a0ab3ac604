// Extracts GitLab's CI JSON Schema (app/assets/javascripts/editor/schema/ci.json) from the npm package
// gitlab-ci-local (MIT), whose bundle dist/index.js carries it as a JavaScript object literal.
// Usage: node extract-gitlab-ci-schema.mjs BUNDLE OUT.json
import { readFileSync, writeFileSync } from "node:fs";

const [bundlePath, outPath] = process.argv.slice(2);
if (!bundlePath || !outPath) {
  console.error("usage: extract-gitlab-ci-schema.mjs BUNDLE OUT.json");
  process.exit(2);
}
const text = readFileSync(bundlePath, "utf8");
const marker = '{$schema:"http://json-schema.org/draft-07/schema#",$id:"https://gitlab.com/.gitlab-ci.yml"';
const start = text.indexOf(marker);
if (start < 0 || text.indexOf(marker, start + 1) >= 0) {
  console.error(`extract: expected exactly one GitLab CI schema literal in ${bundlePath}`);
  process.exit(1);
}

// The literal's end: the brace that closes the first one, skipping strings (with escapes) and nested brackets.
let depth = 0;
let end = -1;
for (let i = start; i < text.length && end < 0; i++) {
  const c = text[i];
  if (c === '"' || c === "'" || c === "`") {
    for (i++; i < text.length && text[i] !== c; i++) if (text[i] === "\\") i++;
    continue;
  }
  if (c === "{" || c === "[" || c === "(") depth++;
  else if (c === "}" || c === "]" || c === ")") {
    depth--;
    if (depth === 0) end = i + 1;
  }
}
if (end < 0) {
  console.error("extract: the schema literal does not end");
  process.exit(1);
}

// The literal is data only (strings, numbers, booleans, arrays, objects): evaluate it as an expression.
const schema = new Function(`"use strict"; return (${text.slice(start, end)});`)();
if (schema.$id !== "https://gitlab.com/.gitlab-ci.yml" || typeof schema.definitions !== "object") {
  console.error("extract: the literal is not GitLab's CI schema");
  process.exit(1);
}
writeFileSync(outPath, JSON.stringify(schema, null, 2) + "\n");
