#!/usr/bin/env python3
"""Direct latency of a live mirror, polled every 0.5 ms or tighter (live.py's
own 2 ms poll and whole-tree walks set a floor under its figures):
  scripts/bench-latency.py 'exec target/release/mirrortray watch {src} {dst}'
  scripts/bench-latency.py 'exec ../shared/bench/peers/lsyncd.sh {src} {dst}'
Prints create / append latency (p50, min, max over 30 files), the time for a
5,000-file burst to arrive, for a renamed 5,000-file folder to appear under
its new name (5 renames), and for its deletion to reach DST."""
import os, shutil, signal, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.environ.get("CORPUS", os.path.join(here, "..", "..", "shared", "bench", "corpus.py"))
root = tempfile.mkdtemp(prefix="lat-")
src, dst = os.path.join(root, "src"), os.path.join(root, "dst")
subprocess.run([sys.executable, corpus, src, "2000"], check=True, stdout=subprocess.DEVNULL)
os.makedirs(dst)
proc = subprocess.Popen(sys.argv[1].format(src=src, dst=dst), shell=True, start_new_session=True,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(pred, timeout=60, pause=0.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        if pause:
            time.sleep(pause)
    sys.exit(f"timed out after {timeout} s")


def same(rel):
    try:
        with open(os.path.join(src, rel), "rb") as a, open(os.path.join(dst, rel), "rb") as b:
            return a.read() == b.read()
    except OSError:
        return False


def ms(xs):
    xs = sorted(xs)
    return f"p50 {1000 * xs[len(xs) // 2]:.2f} ms  min {1000 * xs[0]:.2f}  max {1000 * xs[-1]:.2f}"


try:
    wait(lambda: os.path.exists(os.path.join(dst, os.listdir(src)[0])), 120, 0.05)
    time.sleep(2)
    for mode, name in (("w", "create"), ("a", "append")):
        lat = []
        for i in range(30):
            rel = f"single{i}"
            with open(os.path.join(src, rel), mode) as f:
                f.write("x" * (i + 1))
            lat.append(wait(lambda: same(rel), 30))
            time.sleep(0.05)
        print(f"{name:8} {ms(lat)}")
    bd = os.path.join(src, "burst")
    os.makedirs(bd)
    t0 = time.monotonic()
    for i in range(5000):
        with open(os.path.join(bd, f"b{i}"), "w") as f:
            f.write(str(i))
    last = os.path.join(dst, "burst", "b4999")
    wait(lambda: os.path.exists(last) and len(os.listdir(os.path.dirname(last))) == 5000, 60, 0.0005)
    print(f"burst    {time.monotonic() - t0:.3f} s from the first write")
    time.sleep(1)
    lat, names = [], ("burst", "burst2")
    for k in range(5):
        a, b = names[k % 2], names[(k + 1) % 2]
        os.rename(os.path.join(src, a), os.path.join(src, b))
        lat.append(wait(lambda: os.path.exists(os.path.join(dst, b, "b4999")), 60, 0.0005))
        time.sleep(0.5)
    print(f"rename   {ms(lat)}")
    shutil.rmtree(os.path.join(src, names[1]))
    t = wait(lambda: not os.path.exists(os.path.join(dst, names[1])), 60, 0.0005)
    print(f"delete   {1000 * t:.1f} ms")
finally:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()
    shutil.rmtree(root, ignore_errors=True)
