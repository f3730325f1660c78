#!/usr/bin/env python3
"""Large real tree, the same for any watcher:
kernel.py --tar linux.tar --cmd 'WATCHER {src} {dst}' [--cmd ...]

For each command: start it on an empty SRC and DST, then
  tar x of the tarball into SRC -> seconds until DST converged (after tar ends)
  rename of the extracted top folder  -> seconds until converged
  rm -rf of it                        -> seconds until converged
  RSS of the watcher's process tree once converged (MB)
  CPU of the watcher's process tree while a file is rewritten once a second
  for --busy seconds (% of one core)
Convergence is polled with a full lstat walk of both trees in Python
(types, sizes, link targets; about 3.4 s per poll on 84k entries here, which
bounds the resolution), or with `--verify BIN` by `BIN verify` (0.5 s).
Prints one JSON line per command.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--tar", required=True)
ap.add_argument("--cmd", action="append", required=True)
ap.add_argument("--timeout", type=float, default=600.0)
ap.add_argument("--busy", type=float, default=30.0)
ap.add_argument("--verify", metavar="MIRRORTRAY",
                help="check convergence with `MIRRORTRAY verify SRC DST` (about 0.5 s "
                     "per poll on the kernel tree, and stricter: ns mtimes, modes) "
                     "instead of the Python walk (about 3.4 s per poll)")
a = ap.parse_args()


def tree(p):
    out = {}
    for dp, dns, fns in os.walk(p):
        dns[:] = [x for x in dns if not (dp == p and x == ".mirrortray")]
        for n in dns + fns:
            full = os.path.join(dp, n)
            st = os.lstat(full)
            if os.path.islink(full):
                out[os.path.relpath(full, p)] = ("l", os.readlink(full))
            elif os.path.isdir(full):
                out[os.path.relpath(full, p)] = ("d",)
            else:
                out[os.path.relpath(full, p)] = ("f", st.st_size)
    return out


def same(src, dst):
    if a.verify:
        r = subprocess.run([a.verify, "verify", "-q", src, dst],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0
    return tree(src) == tree(dst)


def wait_converged(src, dst, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if same(src, dst):
                return round(time.monotonic() - t0, 2)
        except OSError:
            pass
        time.sleep(0.05)
    return None


def pids_of(root_pid):
    """The process and its descendants."""
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_mb(root_pid):
    total = 0
    for p in pids_of(root_pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def cpu_ticks(root_pid):
    total = 0
    for p in pids_of(root_pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (children that exited count too)
            total += sum(int(x) for x in fields[11:15])
        except OSError:
            pass
    return total


for cmd in a.cmd:
    root = tempfile.mkdtemp(prefix="kernel-", dir=os.environ.get("BENCH_DIR"))
    src, dst = os.path.join(root, "src"), os.path.join(root, "dst")
    os.makedirs(src)
    os.makedirs(dst)
    res = {"cmd": cmd.split()[1] if cmd.startswith("exec ") else cmd.split()[0]}
    proc = subprocess.Popen(cmd.format(src=src, dst=dst), shell=True,
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(root, "watcher.err"), "wb"),
                            start_new_session=True)
    # Ready: a first file arrives.
    with open(os.path.join(src, "ready"), "w") as f:
        f.write("ready")
    t0 = time.monotonic()
    while not os.path.exists(os.path.join(dst, "ready")) and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    t = time.monotonic()
    subprocess.run(["tar", "xf", a.tar, "-C", src], check=True)
    res["tar_s"] = round(time.monotonic() - t, 2)
    res["tar_converge_s"] = wait_converged(src, dst, a.timeout)
    res["rss_mb"] = rss_mb(proc.pid)
    top = next(n for n in os.listdir(src) if n != "ready")
    os.rename(os.path.join(src, top), os.path.join(src, "renamed"))
    res["rename_converge_s"] = wait_converged(src, dst, a.timeout)
    shutil.rmtree(os.path.join(src, "renamed"))
    res["rm_converge_s"] = wait_converged(src, dst, a.timeout)
    # A log written once a second.
    ticks0, t = cpu_ticks(proc.pid), time.monotonic()
    with open(os.path.join(src, "app.log"), "a") as f:
        while time.monotonic() - t < a.busy:
            f.write(f"line at {time.time()}\n")
            f.flush()
            time.sleep(1)
    used = (cpu_ticks(proc.pid) - ticks0) / os.sysconf("SC_CLK_TCK")
    res["cpu_pct_file_every_second"] = round(100 * used / (time.monotonic() - t), 2)
    os.killpg(proc.pid, 15)
    proc.wait()
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(res), flush=True)
