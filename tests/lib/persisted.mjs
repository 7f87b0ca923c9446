// What Miniflare persisted of the Durable Objects: every object's SQLite
// file under a persist directory (workerd keeps one per object it ever
// instantiated, even one that stored nothing), read through python3's
// sqlite3 (node 20 has none): its tables and rows, WAL included. An object
// whose database holds no table stores nothing: in production such an object
// is not kept. Miniflare's own `metadata.sqlite` is left out.
import { spawnSync } from "node:child_process";

const READ = `
import json, os, sqlite3, sys
out = {}
for d, _s, files in os.walk(sys.argv[1]):
    for f in sorted(files):
        if not f.endswith(".sqlite") or f == "metadata.sqlite":
            continue
        p = os.path.join(d, f)
        db = sqlite3.connect(p)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {t: db.execute('SELECT count(*) FROM "%s"' % t.replace('"', '""')).fetchone()[0] for t in tables}
        db.close()
        out[f[:-len(".sqlite")]] = rows
print(json.dumps(out))
`;

const EDIT = `
import sqlite3, sys
for p in sys.argv[2:]:
    db = sqlite3.connect(p)
    db.executescript(sys.argv[1])
    db.commit()
    db.close()
`;

/** { objectId: { table: rowCount } } for every object file under `dir`. */
export function storedObjects(dir) {
  const r = spawnSync("python3", ["-c", READ, dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`reading ${dir}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The objects that store anything (a table), as `storedObjects` reads them. */
export function durableObjects(dir) {
  return Object.fromEntries(Object.entries(storedObjects(dir)).filter(([, t]) => Object.keys(t).length > 0));
}

/**
 * Run `sql` in every object database under `dir` that has `table` (the
 * runtime must be stopped: an operator's or a crash's change to the stored state).
 */
export function editObjects(dir, table, sql) {
  const files = [];
  const r = spawnSync("python3", ["-c", `
import os, sqlite3, sys
for d, _s, fs in os.walk(sys.argv[1]):
    for f in fs:
        if f.endswith(".sqlite") and f != "metadata.sqlite":
            p = os.path.join(d, f)
            db = sqlite3.connect(p)
            if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (sys.argv[2],)).fetchone():
                print(p)
            db.close()
`, dir, table], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`finding ${table} under ${dir}: ${r.stderr}`);
  files.push(...r.stdout.split("\n").filter(Boolean));
  if (files.length === 0) throw new Error(`no object under ${dir} has a ${table} table`);
  const e = spawnSync("python3", ["-c", EDIT, sql, ...files], { encoding: "utf8" });
  if (e.status !== 0) throw new Error(`editing ${files.join(", ")}: ${e.stderr}`);
  return files.length;
}
