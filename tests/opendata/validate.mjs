/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Validate a directory written by `portier-custodian opendata` with the Frictionless
// validators from npm — code that is not ours:
//
//   node validate.mjs DIR
//
// 1. datapackage.json against the Data Package profile it names (tabular-data-package);
// 2. each resource read in full by the package, every value cast to its field's type and
//    checked against its constraints, primary keys unique, foreign keys resolved;
// 3. each CSV on its own against its Table Schema file (tableschema), headers included;
// 4. each CSV's bytes and SHA-256 against the package's "bytes" and "hash".
//
// Prints {"valid": bool, "errors": [...], "rows": {resource: count}} and exits 0 when valid.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import datapackage from 'datapackage';
import tableschema from 'tableschema';

const { Package } = datapackage;
const { Schema, Table } = tableschema;

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node validate.mjs DIR');
  process.exit(2);
}
const errors = [];
const rows = {};

function describe(err) {
  const inner = (err.errors || []).map((e) => e.message || String(e));
  return [err.message || String(err), ...inner].join('; ');
}

const raw = JSON.parse(readFileSync(path.join(dir, 'datapackage.json'), 'utf8'));
const schemaFiles = Object.fromEntries(raw.resources.map((r) => [r.name, r.schema]));
const pkg = await Package.load(path.join(dir, 'datapackage.json'), { strict: false });
if (!pkg.valid) {
  for (const e of pkg.errors) errors.push(`datapackage.json: ${describe(e)}`);
}
if (pkg.descriptor.profile !== 'tabular-data-package') {
  errors.push(`datapackage.json: profile is ${pkg.descriptor.profile}`);
}

for (const resource of pkg.resources) {
  const name = resource.name;
  const d = resource.descriptor;
  if (!resource.valid) {
    for (const e of resource.errors) errors.push(`${name}: ${describe(e)}`);
    continue;
  }
  if (!resource.tabular) errors.push(`${name}: not tabular`);
  // 2. through the package: types, constraints, keys, relations to "sites"
  try {
    const data = await resource.read({ keyed: true, relations: true });
    rows[name] = data.length;
  } catch (e) {
    errors.push(`${name} (package): ${describe(e)}`);
  }
  // 3. on its own, with its schema file
  try {
    if (typeof schemaFiles[name] !== 'string') throw new Error('the schema is not a file of its own');
    const schemaPath = path.join(dir, schemaFiles[name]);
    const schema = await Schema.load(JSON.parse(readFileSync(schemaPath, 'utf8')), { strict: false });
    if (!schema.valid) {
      for (const e of schema.errors) errors.push(`${schemaFiles[name]}: ${describe(e)}`);
    } else {
      const table = await Table.load(path.join(dir, d.path), { schema: schema.descriptor });
      const castErrors = [];
      await table.read({ forceCast: true }).then((out) => {
        out.forEach((row, i) => {
          if (row instanceof Error) castErrors.push(`row ${i + 2}: ${describe(row)}`);
        });
      });
      if (JSON.stringify(table.headers) !== JSON.stringify(schema.fieldNames)) {
        errors.push(`${d.path}: header ${table.headers} is not ${schema.fieldNames}`);
      }
      for (const e of castErrors.slice(0, 20)) errors.push(`${d.path}: ${e}`);
    }
  } catch (e) {
    errors.push(`${d.path} (table): ${describe(e)}`);
  }
  // 4. integrity
  const bytes = readFileSync(path.join(dir, d.path));
  if (d.bytes !== bytes.length) errors.push(`${d.path}: ${bytes.length} bytes, package says ${d.bytes}`);
  const sha = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  if (d.hash !== sha) errors.push(`${d.path}: hash ${sha}, package says ${d.hash}`);
}

console.log(JSON.stringify({ valid: errors.length === 0, errors, rows }));
process.exit(errors.length === 0 ? 0 : 1);
