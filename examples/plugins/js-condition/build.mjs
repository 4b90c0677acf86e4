// componentize-js's API directly: its CLI wrapper (jco componentize) cannot read the
// WIT folder under the Node.js 20 here.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [source, wit, out] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: "condition-plugin",
  // A condition needs none of these; leaving them out keeps the component's imports small.
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
