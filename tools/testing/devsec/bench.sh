#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh: 'make bench' -- benchmarks of confidential device acceptance.
#
# Brings the normal flavour up to date, times two rebuilds (no-op, and after
# touching drivers/base/coco.rs in the prepared tree), boots the kernel with
# coco.mode=bench (the guest runs bench-guest.sh: accept->bind latency,
# N-endpoint scaling, the deferred-list case and the device_cc_accepted()
# hot path), then prints a table and writes it to bench/results.md with a
# plot of per-device accept time against N, bench/per-device.png.
#
# The scaling and deferred-list measurements then run once more in a second
# boot (coco.bench=loaded) while one busy process per host CPU loads the
# host, bounded in time and killed at the end.
#
# Cold build and warm 'make test' times come from README's "Measured"
# table; BENCH_PIPELINE=full times a warm 'make test' too (before taking
# the cache lock, since test.sh takes it itself).
#
# Exits non-zero when the VM run fails, a benchmark step fails or the
# guest's results are incomplete.  Goals that do not hold are reported in
# the table, not turned into failures.

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

t_start=$(date +%s.%N)
since() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }
outdir=$OVERLAY/bench
work=$BUILD/bench
mkdir -p "$CACHE" "$outdir"

warm_test=
if [ "${BENCH_PIPELINE:-}" = full ]; then
	msg "BENCH_PIPELINE=full: timing a warm 'make test' (log: $CACHE/bench-make-test.log)"
	t0=$(date +%s.%N)
	trc=0
	"$here/test.sh" >"$CACHE/bench-make-test.log" 2>&1 || trc=$?
	summary=$(grep -E '^[0-9]+ passed' "$CACHE/bench-make-test.log" | tail -1)
	warm_test="$(since "$t0") s, exit $trc: $summary"
fi

exec 9>"$CACHE/.lock"
flock -n 9 || die "another 'make test', 'make run' or 'make bench' is using $CACHE;" \
	"wait for it (or set COCO_CACHE)"

"$here/setup.sh"
if ! command -v gnuplot >/dev/null; then
	msg "installing gnuplot-nox for the plot"
	export DEBIAN_FRONTEND=noninteractive
	inst=(apt-get install -y -q --no-install-recommends gnuplot-nox)
	"${inst[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && "${inst[@]}" >/dev/null; } ||
		die "apt-get install gnuplot-nox failed"
fi
"$here/fetch-kernel.sh"
python3 "$here/prepare-tree.py" "$OVERLAY" "$PRISTINE" "$KSRC"

rm -rf "$work"
mkdir -p "$work"
out=$BUILD/normal

msg "bringing the normal flavour up to date"
"$here/build.sh" normal

msg "timing a no-op rebuild"
t0=$(date +%s.%N)
"$here/build.sh" normal
t_noop=$(since "$t0")

# prepare-tree.py syncs by content, so the newer mtime does not make the
# next 'make test' rebuild anything beyond what this rebuild already did.
msg "timing a rebuild after touching drivers/base/coco.rs"
touch "$KSRC/drivers/base/coco.rs"
t0=$(date +%s.%N)
"$here/build.sh" normal
t_incr=$(since "$t0")

"$here/mkinitramfs.sh" normal

# Instruction counts of the two hot-path functions, from the linked kernel.
llvm-objdump$LLVM_SUFFIX -d --no-show-raw-insn \
	--disassemble-symbols=device_cc_accepted,devsec_bench_c_accepted,devsec_bench_c_accepted_near \
	"$out/vmlinux" >"$work/hotpath.dis" 2>&1 ||
	die "llvm-objdump of $out/vmlinux failed: $(head -3 "$work/hotpath.dis")"
# Their addresses and those of the loops calling them (page placement).
llvm-nm$LLVM_SUFFIX "$out/vmlinux" |
	grep -E ' (device_cc_accepted|devsec_bench_c_accepted(_near)?|devsec_bench_loop_(rust|c|near))$' \
	>"$work/hotpath.nm" || true

msg "booting linux-$KVERSION in QEMU (TCG) with coco.mode=bench"
vmrc=0
"$here/run-vm.sh" normal bench 900 || vmrc=$?
cp "$out/guest.log" "$work/guest.log" 2>/dev/null || true
vm_idle=$(cat "$out/vm-seconds" 2>/dev/null || echo 0)

# The same scaling runs under host load: one busy loop per host CPU, each
# bounded by timeout(1) and killed as soon as the guest is done (or by the
# trap if this script dies first).
hogs=()
stop_hogs() {
	local p
	for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done
	hogs=()
}
trap stop_hogs EXIT
if [ $vmrc = 0 ]; then
	msg "booting again with coco.bench=loaded while $(nproc) CPU hogs run on the host"
	for i in $(seq "$(nproc)"); do
		timeout 1200 sh -c 'while :; do :; done' &
		hogs+=($!)
	done
	COCO_APPEND="${COCO_APPEND:+$COCO_APPEND }coco.bench=loaded" \
		"$here/run-vm.sh" normal bench 1200 || vmrc=$?
	stop_hogs
	cp "$out/guest.log" "$work/guest-loaded.log" 2>/dev/null || true
fi

# Machine and toolchain, for the results header.
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "krelease=$(cat "$out/include/config/kernel.release" 2>/dev/null)"
	echo "rustc=$(rustc --version)"
	echo "clang=$(clang$LLVM_SUFFIX --version | head -1)"
	echo "qemu=$(qemu-system-x86_64 --version | head -1)"
	echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "nproc=$(nproc)"
	echo "mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "vm=QEMU TCG, -smp 2, -m 1G"
	echo "vm_seconds=$(printf '%.1f' "$vm_idle")"
	echo "vm_seconds_loaded=$(printf '%.1f' "$(cat "$out/vm-seconds" 2>/dev/null || echo 0)")"
	echo "noop=$t_noop"
	echo "incr=$t_incr"
	echo "warm_test=$warm_test"
	# Date of the README line the cold and warm numbers come from.
	t=$(git -C "$OVERLAY" blame --porcelain -L '/^| cold `make test`/,+1' README.md 2>/dev/null |
		awk '/^committer-time/ { print $2; exit }') || t=
	echo "readme_date=$([ -n "$t" ] && date -u -d "@$t" +%Y-%m-%d || echo 'date unknown')"
} >"$work/env"

prc=0
python3 - "$work" "$outdir" "$OVERLAY/README.md" <<'PY' || prc=$?
import math, re, statistics as st, sys

work, outdir, readme = sys.argv[1:4]
env = dict(l.rstrip("\n").split("=", 1) for l in open(f"{work}/env") if "=" in l)

lat, scale, unl, probes, hot, fails, diag = {}, {}, {}, {}, [], [], []
pprobes, aprobes, phases = {}, {}, []
done = failures = None
deferred = None
chain_cached = None
for line in open(f"{work}/guest.log", errors="replace"):
    if not line.startswith("bench: "):
        continue
    f = line.split()[1:]
    k = f[0]
    if k == "samples":
        lat.setdefault(f[1], []).extend(int(x) for x in f[2:])
    elif k in ("scale", "unlock_all"):
        tgt = scale if k == "scale" else unl
        tgt.setdefault(f[1], {}).setdefault(int(f[2]), []).append(int(f[4]))
    elif k == "pci_probes":
        r, c = pprobes.get((f[1], int(f[2])), (0, 0))
        pprobes[(f[1], int(f[2]))] = (r + int(f[3]), c + int(f[4]))
    elif k == "accept_probes":
        r, c = aprobes.get((f[1], int(f[2])), (0, 0))
        aprobes[(f[1], int(f[2]))] = (r + int(f[3]), c + int(f[4]))
    elif k == "phase":
        phases.append((f[1], float(f[2])))
    elif k == "defer_probes":
        r, c = probes.get((f[1], int(f[2])), (0, 0))
        probes[(f[1], int(f[2]))] = (r + int(f[3]), c + int(f[4]))
    elif k == "chain_cached" and f[1] == "plain":
        chain_cached = (int(f[2]), int(f[3]))
    elif k == "deferred_count":
        deferred = (int(f[1]), int(f[2]))
    elif k == "hotpath":
        hot.append(f[1:])
    elif k == "fail":
        fails.append(" ".join(f[1:]))
    elif k == "diag":
        diag.append(" ".join(f[1:]))
    elif k == "failures":
        failures = int(f[1])
    elif k == "done":
        done = True
    elif k == "kernel":
        env["kversion"] = " ".join(f[1:])

problems = []
if not done:
    problems.append("the guest did not finish the benchmark (no 'bench: done')")
if failures:
    problems.append(f"{failures} benchmark step(s) failed in the guest")

# The second boot, under host load: only its scale lines.
scale_ld, done_ld = {}, False
try:
    for line in open(f"{work}/guest-loaded.log", errors="replace"):
        f = line.split()[1:] if line.startswith("bench: ") else []
        if f[:1] == ["scale"]:
            scale_ld.setdefault(f[1], {}).setdefault(int(f[2]), []).append(int(f[4]))
        elif f[:1] == ["fail"]:
            fails.append("under load: " + " ".join(f[1:]))
        elif f[:1] == ["done"]:
            done_ld = True
except OSError:
    pass
if not done_ld:
    problems.append("the guest under host load did not finish (no 'bench: done')")

def per_dev(tab, label, n):
    """Median over repetitions of total/N, in microseconds."""
    v = tab.get(label, {}).get(n)
    return st.median(t / n for t in v) if v else None

def ms(us):
    return "n/a" if us is None else f"{us / 1000:.2f}"

def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b

rows = []
def row(*c):
    rows.append("| " + " | ".join(str(x) for x in c) + " |")

out = []
out.append("# coco-accept benchmark results\n")
out.append(f"Measured {env['date']} by `make bench` on this machine; "
           "all numbers from that one run.\n")
out.append("| | |\n|---|---|")
out.append(f"| kernel | {env.get('krelease', '?')} `{env.get('kversion', '?')}` (normal flavour) |")
out.append(f"| toolchain | {env['rustc']}; {env['clang']} |")
out.append(f"| VM | {env['qemu']}; {env['vm']} |")
out.append(f"| host | {env['cpu']}, {env['nproc']} CPUs, {env['mem']} RAM |")
out.append("")

# Latency.
out.append("## Accept→bind latency, one endpoint\n")
out.append("| step | median (ms) | p95 (ms) | min (ms) | max (ms) | cycles |")
out.append("|---|---|---|---|---|---|")
names = {"lock": "lock (`tsm/lock` write)",
         "accept": "accept (`tsm/accept` write, returns with devsec_pci bound)",
         "unlock": "unlock (`tsm/unlock` write, unbinds)"}
def rank(v, q):
    """Nearest-rank percentile q (0..100) of v."""
    v = sorted(v)
    return v[max(0, math.ceil(q * len(v) / 100) - 1)]
def latrow(key, label):
    v = lat.get(key)
    if not v:
        problems.append(f"no latency result for {key}")
        return
    out.append(f"| {label} | {ms(rank(v, 50))} | {ms(rank(v, 95))} | {ms(min(v))} "
               f"| {ms(max(v))} | {len(v)} |")
for s in ("lock", "accept", "unlock"):
    latrow(f"plain_{s}", names[s])
out.append("")
out.append("The same without device authentication, as before SPDM (endpoints loaded with "
           "devsec_bus `spdm=0`, devsec_tsm `skip_spdm`):\n")
out.append("| step | median (ms) | p95 (ms) | min (ms) | max (ms) | cycles |")
out.append("|---|---|---|---|---|---|")
for s in ("lock", "accept", "unlock"):
    latrow(f"nospdm_{s}", names[s])
out.append("")
out.append("The lock with SPDM by part, as the TSM times it (debugfs `devsec_tsm/timing/`), "
           "same cycles as the first table. CHALLENGE and MEASUREMENTS each include an "
           "RSA-3072 signature that the emulated device computes on the guest's own (TCG) "
           "CPUs; a real device signs in its own hardware.\n")
out.append("| part of the lock | median (ms) | p95 (ms) | min (ms) | max (ms) | cycles |")
out.append("|---|---|---|---|---|---|")
for key, label in (("spdm_vca", "SPDM VCA (version, capabilities, algorithms)"),
                   ("spdm_certificates", "SPDM digests, chain from the TSM's cache (same "
                    "digest), validation against the trust anchors"),
                   ("spdm_certificates_fetched", "the same, chain fetched (GET_CERTIFICATE)"),
                   ("spdm_challenge", "SPDM CHALLENGE (device signs, TSM verifies)"),
                   ("spdm_measurements", "SPDM signed GET_MEASUREMENTS"),
                   ("tdisp_lock", "TDISP version, capabilities, LOCK_INTERFACE, report"),
                   ("device_signing", "of the lock: the emulated device signing (two "
                    "RSA-3072 signatures, on the guest's CPUs)")):
    latrow(f"plain_{key}", label)
lk, sg = lat.get("plain_lock"), lat.get("plain_device_signing")
if lk and sg and len(lk) == len(sg):
    rest = [a - b for a, b in zip(lk, sg)]
    out.append(f"\nThe lock less the device's signing, cycle by cycle (the TSM's verification, "
               f"the DOE transport, the emulator and TDISP): median {ms(rank(rest, 50))} ms, "
               f"p95 {ms(rank(rest, 95))} ms.")
if chain_cached:
    out.append(f"\nThe certificate chain came from the TSM's cache (same digest, not fetched "
               f"again) in {chain_cached[0]} of {chain_cached[1]} locks.")
out.append("")

# Scaling with SPDM.
out.append("## Scaling with SPDM: lock+accept of all N endpoints\n")
out.append("devsec_pci is bound to all N endpoints first (driver_override), then every endpoint "
           "is locked (SPDM authentication, TDISP lock) and accepted (SPDM measurements again) "
           "in one timed loop. Each endpoint has its own certificate chain.\n")
out.append("| N | repetitions | per device (ms) | unlock per device (ms) |")
out.append("|---|---|---|---|")
for n in (1, 16, 64):
    v = scale.get("spdm", {}).get(n)
    if not v:
        problems.append(f"no SPDM scaling result for N={n}")
        continue
    out.append(f"| {n} | {len(v)} | {ms(per_dev(scale, 'spdm', n))} "
               f"| {ms(per_dev(unl, 'spdm', n))} |")
r_spdm = max((r for r in (ratio(per_dev(scale, "spdm", n), per_dev(scale, "spdm", 1))
                          for n in (16, 64)) if r is not None), default=None)
out.append("")

# Scaling.
out.append("The driver-core measurements below run without SPDM (devsec_bus `spdm=0`, "
           "devsec_tsm `skip_spdm`): they are about deferred probing, not authentication.\n")
out.append("## Scaling: lock+accept of all N endpoints\n")
out.append("*All deferred*: devsec_pci is bound to all N endpoints first (driver_override), "
           "so all wait in the deferred-probe list, then every endpoint is locked and accepted "
           "in one timed loop. *One at a time*: each endpoint gets driver_override just before "
           "its own lock+accept, so no other endpoint is deferred meanwhile (sum of the "
           "per-endpoint windows).\n")
out.append("| N | repetitions | per device, all deferred (ms) | per device, one at a time (ms) | "
           "unlock per device (ms) | devsec_pci probe calls per accepted endpoint, all deferred |")
out.append("|---|---|---|---|---|---|")
for n in (1, 16, 64, 256):
    v = scale.get("scale", {}).get(n)
    if not v:
        problems.append(f"no scaling result for N={n}")
        continue
    reps, cnt = pprobes.get(("scale", n), (0, 0))
    pp = f"{cnt / (reps * n):.1f}" if reps else "n/a"
    out.append(f"| {n} | {len(v)} | {ms(per_dev(scale, 'scale', n))} "
               f"| {ms(per_dev(scale, 'isolated', n))} | {ms(per_dev(unl, 'scale', n))} | {pp} |")
r_scale = ratio(per_dev(scale, "scale", 256), per_dev(scale, "scale", 1))
r_iso = ratio(per_dev(scale, "isolated", 256), per_dev(scale, "isolated", 1))
out.append("")
out.append("Probe calls per accepted endpoint count the probe that defers after `driver_override` "
           "(1), the probe of the accept write itself (1), and the driver core's retries of the "
           "endpoints still deferred, which every successful bind triggers (the rest).\n")
out.append("Probe calls per accept: all devsec_pci probe calls of the series, including the driver "
           "core's background retries (the series waits for them), less those of the "
           "`driver_override` binds, divided by the number of accepts. 1.00 means each accept probes "
           "its endpoint once and nothing else.\n")
out.append("| | " + " | ".join(f"N={n}" for n in (1, 16, 64, 256)) + " |")
out.append("|---|---|---|---|---|")
pa = {}
for n in (1, 16, 64, 256):
    reps, cnt = aprobes.get(("scale", n), (0, 0))
    pa[n] = cnt / (reps * n) if reps else None
out.append("| probe calls per accept, all deferred | "
           + " | ".join("n/a" if pa[n] is None else f"{pa[n]:.2f}" for n in pa) + " |")
r_pa = max((v for v in pa.values() if v is not None), default=None)
out.append("")

# Deferred list.
out.append("## With 256 unrelated devices in the deferred-probe list\n")
if deferred:
    out.append(f"Deferred-probe list before measuring: {deferred[0]} `devsec_bench_defer` devices "
               f"({deferred[1]} entries in all).\n")
else:
    problems.append("no deferred-list count")
out.append("| N | repetitions | per device, none deferred (ms) | per device, 256 deferred (ms) "
           "| ratio | probe calls of the 256 per accept |")
out.append("|---|---|---|---|---|---|")
r_def = {}
for n in (1, 64):
    a, p = per_dev(scale, "absent", n), per_dev(scale, "deferred256", n)
    if a is None or p is None:
        problems.append(f"no deferred-list result for N={n}")
        continue
    r_def[n] = ratio(p, a)
    reps, cnt = probes.get(("deferred256", n), (0, 0))
    per = cnt / (reps * n) if reps else 0
    out.append(f"| {n} | {len(scale['deferred256'][n])} | {ms(a)} | {ms(p)} "
               f"| {r_def[n]:.2f} | {per:.0f} |")
out.append("")
out.append("Single steps, one endpoint, with the 256 deferred devices absent and present "
           "(alternating in chunks of 8 cycles):\n")
out.append("| step | median (ms) | p95 (ms) | min (ms) | max (ms) | cycles |")
out.append("|---|---|---|---|---|---|")
for lbl, txt in (("absent", "none deferred"), ("deferred256", "256 deferred")):
    for s in ("lock", "accept", "unlock"):
        latrow(f"{lbl}_{s}", f"{s}, {txt}")
out.append("")

# Idle and loaded.
r_scale_ld = ratio(per_dev(scale_ld, "scale", 256), per_dev(scale_ld, "scale", 1))
r_def_ld = ratio(per_dev(scale_ld, "deferred256", 1), per_dev(scale_ld, "absent", 1))
out.append("## Idle and under host load\n")
out.append(f"The scaling and deferred-list runs (N=1) again, in a second boot, while one busy loop per "
           f"host CPU ({env['nproc']}) runs on the host: the vCPUs compete with them for the cores.\n")
out.append("| ratio | idle | under host load |")
out.append("|---|---|---|")
def r2(v):
    return "n/a" if v is None else f"{v:.2f}"
out.append(f"| per-device lock+accept, N=256 / N=1, all deferred | {r2(r_scale)} | {r2(r_scale_ld)} |")
out.append(f"| per-device lock+accept at N=1, 256 unrelated deferred / none | {r2(r_def.get(1))} | "
           f"{r2(r_def_ld)} |")
for n in (1, 256):
    out.append(f"| (per device, all deferred, N={n}, ms) | {ms(per_dev(scale, 'scale', n))} | "
               f"{ms(per_dev(scale_ld, 'scale', n))} |")
out.append("")

# Hot path.
def rounds(v):
    return [int(h[3]) for h in hot if h[:1] == ["round"] and h[2] == v]
calls = next((int(h[1]) for h in hot if h[:1] == ["calls"]), 0)
preempt = next((h[1] for h in hot if h[:1] == ["preempt"]), "?")
herr = next((int(h[1]) for h in hot if h[:1] == ["errors"]), None)
dis = open(f"{work}/hotpath.dis").read()
def insns(sym):
    m = re.search(rf"<{sym}>:\n((?:\s*[0-9a-f]+:\s.*\n?)+)", dis)
    lines = [l.split(":", 1)[1].strip() for l in m.group(1).splitlines()] if m else []
    while lines and not lines[-1].startswith("ret"):
        lines.pop()  # alignment padding after the last return
    return lines
addr = {}
for l in open(f"{work}/hotpath.nm"):
    a_, _, sym = l.split()
    addr[sym] = int(a_, 16)
def page(sym):
    return addr[sym] >> 12 if sym in addr else None
variants = [("rust", "`device_cc_accepted()`, Rust, drivers/base/coco.rs",
             "device_cc_accepted", "devsec_bench_loop_rust"),
            ("c", "`devsec_bench_c_accepted()`, C, global, page-aligned",
             "devsec_bench_c_accepted", "devsec_bench_loop_c"),
            ("c_near", "`devsec_bench_c_accepted_near()`, C, static, in its loop's page",
             "devsec_bench_c_accepted_near", "devsec_bench_loop_near")]
out.append("## Hot path: `device_cc_accepted()` (Rust) against a C baseline\n")
r_hot = None
pc = {v[0]: [t / calls for t in rounds(v[0])] for v in variants} if calls else {}
if calls and all(pc.get(v[0]) for v in variants) and herr == 0:
    r_hot = min(pc["rust"]) / min(pc["c"])
    out.append(f"{calls:,} calls per round, {len(pc['rust'])} rounds alternating the variants, "
               f"on the same accepted platform device, preemption model `{preempt}` with "
               f"preemption disabled around each loop; every variant answered correctly for an "
               f"accepted and a not-accepted device and counted {calls:,} hits per round. The "
               f"loops are identical but for the callee.\n")
    out.append("| callee | ns/call (min) | ns/call (median) | instructions | call crosses a page |")
    out.append("|---|---|---|---|---|")
    for key, txt, sym, loop in variants:
        v = pc[key]
        if page(sym) is None or page(loop) is None:
            cross = "?"
        else:
            cross = "yes" if page(sym) != page(loop) else "no"
        out.append(f"| {txt} | {min(v):.2f} | {st.median(v):.2f} | {len(insns(sym))} | {cross} |")
    out.append(f"| **ratio Rust / C** (global, page-aligned) | **{r_hot:.3f}** | "
               f"{st.median(pc['rust']) / st.median(pc['c']):.3f} | | |")
    out.append(f"| ratio Rust / C near (static, same page) "
               f"| {min(pc['rust']) / min(pc['c_near']):.3f} "
               f"| {st.median(pc['rust']) / st.median(pc['c_near']):.3f} | | |")
else:
    problems.append(f"hot path incomplete or wrong (errors={herr})")
out.append("")
out.append("<details><summary>Disassembly (vmlinux)</summary>\n\n```")
for _, _, sym, _ in variants:
    out.append(f"{sym}:")
    out += [f"    {l}" for l in insns(sym)]
out.append("```\n</details>\n")

# Pipeline.
def readme_num(start, pat):
    for l in open(readme):
        if l.startswith(start):
            m = re.search(pat, l)
            return m.group(1) if m else None
cold = readme_num("| cold `make test`", r"\*\*(\d+) s")
cold_build = readme_num("| cold `make test`", r"build normal (\d+) s")
warm = readme_num("| warm `make test`", r"\*\*(\d+) s")
src = f"from README, measured {env['readme_date']}"
out.append("## Pipeline (wall seconds)\n")
out.append("| what | seconds | source |")
out.append("|---|---|---|")
out.append(f"| cold build, normal flavour | {cold_build or 'n/a'} | {src} |")
out.append(f"| cold `make test` (all flavours and variants) | {cold or 'n/a'} | {src} |")
if env.get("warm_test"):
    out.append(f"| warm `make test` | {env['warm_test']} | this run (BENCH_PIPELINE=full) |")
else:
    out.append(f"| warm `make test` | {warm or 'n/a'} | {src} |")
out.append(f"| no-op rebuild, normal flavour | {env['noop']} | this run |")
out.append(f"| rebuild after touching drivers/base/coco.rs | {env['incr']} | this run |")
out.append(f"| boot + all guest benchmarks (QEMU TCG) | {env['vm_seconds']} | this run |")
out.append(f"| boot + scaling under host load | {env.get('vm_seconds_loaded', 'n/a')} | this run |")
if phases:
    out.append("| guest phases (s): " + ", ".join(
        f"{a} {b2 - b1:.1f}" for (a, b1), (_, b2) in zip(phases, phases[1:])) + " | | this run |")
out.append("")

# Goals.
def goal(name, val, bound):
    if val is None:
        return f"| {name} | n/a | ≤ {bound} | not measured |"
    return f"| {name} | {val:.2f} | ≤ {bound} | {'holds' if val <= bound else 'DOES NOT HOLD'} |"
out.append("## Goals\n")
out.append("| goal | measured | bound | verdict |")
out.append("|---|---|---|---|")
v = lat.get("plain_lock")
out.append(goal("lock with SPDM, one endpoint, median (ms)",
                rank(v, 50) / 1000 if v else None, 200))
out.append(goal("per-device lock+accept with SPDM, worst of N=16, 64 / N=1", r_spdm, 1.5))
out.append(goal("per-device lock+accept, N=256 / N=1, all deferred", r_scale, 1.5))
out.append(goal("per-device lock+accept, N=256 / N=1, one at a time", r_iso, 1.5))
for n in (1, 64):
    out.append(goal(f"per-device lock+accept at N={n}, 256 deferred / none", r_def.get(n), 1.5))
out.append(goal("per-device lock+accept, N=256 / N=1, all deferred, host loaded", r_scale_ld, 1.5))
out.append(goal("per-device lock+accept at N=1, 256 deferred / none, host loaded", r_def_ld, 1.5))
out.append(goal("devsec_pci probe calls per accept, worst N (must be 1.00)", r_pa, 1.0))
out.append(goal("hot path ns/call, Rust / C (minimum of rounds)", r_hot, 1.05))
out.append("")
if fails or diag:
    out.append("## Failed steps\n")
    out += [f"- {x}" for x in fails + diag]
    out.append("")

text = "\n".join(out)
print(text)
with open(f"{work}/plot.dat", "w") as p:
    for lbl in ("scale", "isolated", "absent", "deferred256"):
        p.write(f"# {lbl}\n")
        for n in sorted(scale.get(lbl, {})):
            p.write(f"{n} {per_dev(scale, lbl, n) / 1000:.3f}\n")
        p.write("\n\n")
with open(f"{work}/results.md", "w") as r:
    r.write(text + "\n")
for p in problems:
    print(f"error: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

gnuplot <<GP 2>"$work/gnuplot.log" || { cat "$work/gnuplot.log" >&2; prc=1; }
set terminal png size 800,600
set output "$work/per-device.png"
set title "Per-device lock+accept time against N (QEMU TCG, $(date -u +%F))"
set xlabel "endpoints N"
set ylabel "ms per device (median over repetitions)"
set logscale x 2
set xrange [0.7:370]
set yrange [0:*]
set key outside below vertical
set grid
plot "$work/plot.dat" index 0 with linespoints lw 2 pt 7 \
	title "all N endpoints deferred, then accepted", \
     "" index 1 with linespoints lw 2 pt 9 title "one endpoint at a time (nothing else deferred)", \
     "" index 3 with points pt 5 ps 1.5 title "all deferred, plus 256 unrelated deferred devices", \
     "" index 2 with points pt 4 ps 1.5 title "same points without them"
GP

if [ $vmrc = 0 ] && [ $prc = 0 ]; then
	cp "$work/results.md" "$outdir/results.md"
	cp "$work/per-device.png" "$outdir/per-device.png"
	total=$(since "$t_start")
	printf '\n_make bench wall time: %s s._\n' "$total" >>"$outdir/results.md"
	msg "wrote $outdir/results.md and $outdir/per-device.png; make bench took $total s"
	exit 0
fi
[ $vmrc = 0 ] ||
	echo "error: the benchmark VM run failed (see $out/console.log, $out/guest.log)" >&2
die "make bench failed; results kept in $work, bench/ not updated"
