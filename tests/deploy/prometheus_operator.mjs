// Validates Prometheus-operator objects (a JSON list on stdin) against the operator's CRD schemas
// as @kubernetes-models/prometheus-operator compiles them; prints a JSON list of the problems.
// Usage: node prometheus_operator.mjs NODE_TOOLS_DIR < objects.json
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const models = join(
  process.argv[2], "node_modules", "@kubernetes-models", "prometheus-operator", "monitoring.coreos.com"
);
const problems = [];
for (const object of JSON.parse(readFileSync(0, "utf8"))) {
  const [, version] = object.apiVersion.split("/");
  const module = await import(pathToFileURL(join(models, version, `${object.kind}.js`)).href);
  try {
    new module[object.kind](object).validate();
  } catch (error) {
    problems.push(`${object.kind} ${object.metadata.name}: ${error.message}`);
  }
}
console.log(JSON.stringify(problems));
