// Validates Kubernetes manifests against the Kubernetes API's OpenAPI schemas
// (the npm package kubernetes-models, whose classes carry them):
//   node tests/deploy/validate_k8s.mjs FILE.yaml...
// Prints "ok FILE KIND NAME" per object, or the schema errors; exits 1 when
// any object is invalid, of an unknown kind, or a file does not parse.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const modules = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
};

let failed = false;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = parseAllDocuments(readFileSync(file, 'utf8'));
  } catch (e) {
    console.log(`error ${file}: ${e.message}`);
    failed = true;
    continue;
  }
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      console.log(`error ${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      failed = true;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const where = `${file} ${obj.kind} ${obj.metadata?.name}`;
    const path = modules[obj.apiVersion];
    const api = path ? await import(path) : undefined;
    const Model = api?.[obj.kind];
    if (!Model) {
      console.log(`error ${where}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
      failed = true;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok ${where}`);
    } catch (e) {
      console.log(`error ${where}: ${e.message}`);
      failed = true;
    }
  }
}
process.exit(failed ? 1 : 0);
