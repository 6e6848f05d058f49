// Validates FHIR R4 JSON resources with FHIR.js (the npm package `fhir`), a validator independent of
// the Python models the service builds them with. Reads a JSON array of resources on stdin and writes
// a JSON array of FHIR.js's answers ({valid, messages}), one per resource, in the same order.
// Unexpected properties are errors: a misspelt element must not pass as an extension would.
const { Fhir } = require("fhir");

const fhir = new Fhir();
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const answers = JSON.parse(input).map((resource) => fhir.validate(resource, { errorOnUnexpected: true }));
  process.stdout.write(JSON.stringify(answers));
});
