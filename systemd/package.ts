// `npm run package`: what hb ships, built from the checkout around the one bundled file
// (systemd/build.ts), with nothing of node_modules:
//   dist/hb_<version>_all.deb   the Debian package, made with dpkg-deb;
//   dist/hb-<version>.tgz       the npm package, made with npm pack.
// It prints each artifact's path on a line of its own. The Debian package's tree stays in
// dist/root, from which systemd/install.sh installs the same files where there is no dpkg.

import { spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { BUNDLE, METAFILE, buildBundle } from "./build.js";

const top = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url));
const pkg = JSON.parse(readFileSync(top("package.json"), "utf8")) as {
  version: string;
  description: string;
  license: string;
  author: string;
  engines: { node: string };
};
const DIST = top("dist");
const ROOT = join(DIST, "root");
const MAN_PAGES = ["hb.1", "heartbeat.yaml.5", "hb-monitor.8"];
/** The files under /etc that dpkg keeps as the operator edits them. */
const CONFFILES = ["/etc/hb/heartbeat.yaml", "/etc/hb/node.env"];
const EXAMPLES = [
  "systemd/examples/hb-monitor-hooks.conf",
  "systemd/examples/hb-monitor-onfailure.conf",
  "systemd/examples/hb-monitor-failed@.service",
  "systemd/examples/heartbeat-ha.yaml",
  "heartbeat.yaml",
];

/** Build time, for reproducible artifacts: SOURCE_DATE_EPOCH, else the last commit's. */
const epoch = Number(
  process.env.SOURCE_DATE_EPOCH ??
    (spawnSync("git", ["log", "-1", "--format=%ct"], { cwd: top("."), encoding: "utf8" }).stdout?.trim() ||
      Math.floor(Date.now() / 1000)),
);

function run(command: string, args: string[], cwd = top(".")): string {
  const r = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
  });
  if (r.error !== undefined) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function put(path: string, content: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}

const gzip = (data: string | Buffer): Buffer => gzipSync(data, { level: 9 });

/** The man pages, rendered from their source in docs/man. */
function renderManPages(): string {
  const out = join(DIST, "man");
  mkdirSync(out, { recursive: true });
  run(process.execPath, ["--import", "tsx", top("docs/man/render.ts"), out]);
  for (const page of MAN_PAGES)
    if (!existsSync(join(out, page))) throw new Error(`no ${page} from docs/man/render.ts`);
  return out;
}

/** The libraries inside the bundle, from esbuild's metafile: name, licence and licence text. */
function bundledLibraries(): { name: string; version: string; license: string; text: string }[] {
  const meta = JSON.parse(readFileSync(METAFILE, "utf8")) as { inputs: Record<string, unknown> };
  const names = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m !== null) names.add(m[1]!);
  }
  return [...names].sort().map((name) => {
    const dir = top(`node_modules/${name}`);
    const info = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      version: string;
      license: string;
    };
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    if (file === undefined) throw new Error(`${name} has no licence file to ship`);
    return {
      name,
      version: info.version,
      license: info.license,
      text: readFileSync(join(dir, file), "utf8"),
    };
  });
}

/** Debian's machine-readable copyright file: hb's own paragraph, then one per bundled library. */
function copyright(): string {
  const paragraphs = bundledLibraries().map((lib) => {
    const holders = [...new Set(lib.text.split("\n").filter((l) => /copyright\s*(\(c\)|©|\d)/i.test(l)))]
      .map((l) => l.replace(/^\s*copyright\s*(\(c\)|©)?\s*/i, "").trim())
      .filter((l) => l !== "");
    // Debian ships the Apache licence's text: the copyright file refers to it (Policy 12.5).
    const body =
      lib.license === "Apache-2.0"
        ? " On Debian systems, the full text of the Apache License, Version 2.0 is in\n /usr/share/common-licenses/Apache-2.0."
        : lib.text
            .trim()
            .split("\n")
            .map((l) => (l.trim() === "" ? " ." : ` ${l.trimEnd()}`))
            .join("\n");
    return [
      `Files: node_modules/${lib.name}/*`,
      `Copyright: ${holders.length > 0 ? holders.join("\n ") : `the ${lib.name} authors`}`,
      `Comment: ${lib.name} ${lib.version}, bundled in /usr/share/hb/hb.mjs`,
      `License: ${lib.license}\n${body}`,
    ].join("\n");
  });
  return [readFileSync(top("systemd/debian/copyright"), "utf8").trimEnd(), ...paragraphs].join("\n\n") + "\n";
}

/** A Debian changelog (hb is a native package): one entry for this version. */
function debianChangelog(maintainer: string): string {
  const date = new Date(epoch * 1000).toUTCString().replace(/GMT$/, "+0000");
  return `hb (${pkg.version}) unstable; urgency=medium

  * hb ${pkg.version}. The changes are listed in /usr/share/doc/hb/CHANGELOG.md.gz.

 -- ${maintainer}  ${date}
`;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return lstatSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** The tree of the Debian package in dist/root, with its control files in dist/root/DEBIAN. */
function stageDebian(man: string, maintainer: string): void {
  const at = (path: string): string => join(ROOT, path);
  const bundle = readFileSync(BUNDLE, "utf8").replace(/^#!.*\n/, "#!/usr/bin/node\n");
  put(at("usr/share/hb/hb.mjs"), bundle, 0o755);
  put(at("usr/share/hb/heartbeat.yaml"), readFileSync(top("heartbeat.yaml")));
  mkdirSync(at("usr/bin"), { recursive: true });
  symlinkSync("../share/hb/hb.mjs", at("usr/bin/hb"));
  for (const unit of ["hb-monitor.service", "hb-node@.service"])
    put(at(`lib/systemd/system/${unit}`), readFileSync(top(`systemd/${unit}`)));
  put(at("usr/lib/sysctl.d/90-hb.conf"), readFileSync(top("systemd/90-hb.conf")));
  put(at("etc/hb/heartbeat.yaml"), readFileSync(top("heartbeat.yaml")));
  put(at("etc/hb/node.env"), readFileSync(top("systemd/node.env")));
  for (const page of MAN_PAGES)
    put(at(`usr/share/man/man${page.at(-1)}/${page}.gz`), gzip(readFileSync(join(man, page))));
  const doc = at("usr/share/doc/hb");
  put(join(doc, "copyright"), copyright());
  put(join(doc, "changelog.gz"), gzip(debianChangelog(maintainer)));
  put(join(doc, "CHANGELOG.md.gz"), gzip(readFileSync(top("CHANGELOG.md"))));
  put(join(doc, "README.md.gz"), gzip(readFileSync(top("README.md"))));
  for (const example of EXAMPLES)
    put(join(doc, "examples", example.split("/").at(-1)!), readFileSync(top(example)));

  const files = walk(ROOT).sort();
  for (const path of files) if (!lstatSync(path).isSymbolicLink()) utimesSync(path, epoch, epoch);
  const installedKiB = files.reduce((sum, path) => sum + Math.ceil(lstatSync(path).size / 1024), 0);
  const md5sums = files
    .filter((path) => !lstatSync(path).isSymbolicLink() && !path.startsWith(at("etc/")))
    .map((path) => `${createHash("md5").update(readFileSync(path)).digest("hex")}  ${relative(ROOT, path)}`)
    .join("\n");
  const control = readFileSync(top("systemd/debian/control"), "utf8")
    .replace("@VERSION@", pkg.version)
    .replace("@MAINTAINER@", maintainer)
    .replace("@INSTALLED_SIZE@", String(installedKiB));
  put(at("DEBIAN/control"), control);
  put(at("DEBIAN/conffiles"), CONFFILES.join("\n") + "\n");
  put(at("DEBIAN/md5sums"), md5sums + "\n");
  for (const script of ["postinst", "prerm", "postrm"])
    put(at(`DEBIAN/${script}`), readFileSync(top(`systemd/debian/${script}`)), 0o755);
}

/** The npm package: the bundle and what goes with it, with no dependencies to fetch. */
function packNpm(man: string): string {
  const stage = join(DIST, "npm");
  const at = (path: string): string => join(stage, path);
  put(at("hb.mjs"), readFileSync(BUNDLE), 0o755);
  put(at("heartbeat.yaml"), readFileSync(top("heartbeat.yaml")));
  for (const file of ["hb-monitor.service", "hb-node@.service", "90-hb.conf", "node.env"])
    put(at(`systemd/${file}`), readFileSync(top(`systemd/${file}`)));
  cpSync(top("systemd/examples"), at("systemd/examples"), { recursive: true });
  for (const page of MAN_PAGES) put(at(`man/${page}`), readFileSync(join(man, page)));
  for (const file of ["README.md", "CHANGELOG.md"]) put(at(file), readFileSync(top(file)));
  cpSync(top("docs"), at("docs"), { recursive: true, filter: (src) => !src.startsWith(top("docs/man")) });
  const manifest = {
    name: "hb",
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    author: pkg.author,
    type: "module",
    bin: { hb: "hb.mjs" },
    man: MAN_PAGES.map((page) => `man/${page}`),
    engines: pkg.engines,
    os: ["linux"],
  };
  put(at("package.json"), JSON.stringify(manifest, null, 2) + "\n");
  const name = run("npm", ["pack", "--pack-destination", DIST, "--loglevel=error"], stage)
    .trim()
    .split("\n")
    .at(-1)!;
  return join(DIST, name);
}

export async function buildPackages(): Promise<{ deb: string | null; tgz: string }> {
  // Directories 0755 and files as put() sets them, whatever the caller's umask.
  process.umask(0o022);
  await buildBundle();
  const man = renderManPages();
  const maintainer = process.env.HB_MAINTAINER ?? pkg.author;
  stageDebian(man, maintainer);
  let deb: string | null = null;
  if (spawnSync("dpkg-deb", ["--version"]).status === 0) {
    deb = join(DIST, `hb_${pkg.version}_all.deb`);
    run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", ROOT, deb]);
  } else {
    process.stderr.write(
      "npm run package: no dpkg-deb here (apt-get install dpkg), so no .deb; dist/root has its files\n",
    );
  }
  const tgz = packNpm(man);
  return { deb, tgz };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { deb, tgz } = await buildPackages();
  for (const path of [deb, tgz]) if (path !== null) process.stdout.write(`${path}\n`);
}
