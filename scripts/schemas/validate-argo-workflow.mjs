// Validates Argo Workflow documents (JSON files) against the Workflow schema of argo-workflows v4, as compiled
// into the npm package @kubernetes-models/argo-workflows (MIT). Exit 0 when every file is valid; else prints
// one line an error (file: instance path: message) and exits 1. Run from scripts/schemas.sh's cache (argo/),
// where the package resolves.
// Usage: node validate-argo-workflow.mjs FILE.json...
import { readFileSync } from "node:fs";
import { Workflow } from "@kubernetes-models/argo-workflows/argoproj.io/v1alpha1/Workflow";

let failed = false;
for (const file of process.argv.slice(2)) {
  const document = JSON.parse(readFileSync(file, "utf8"));
  try {
    new Workflow(document).validate();
  } catch (e) {
    failed = true;
    for (const error of e.errors ?? [{ instancePath: "", message: e.message }])
      console.log(`${file}: ${error.instancePath || "/"}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
