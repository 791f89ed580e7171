# SPDX-License-Identifier: MIT
"""Turns bench/run.sh's raw readings (PLACEMENT FIGURE IMPL VALUE per line) into the printed
table (medians, [min..max], ratios to libcoap and to raw UDP, targets) and the JSON file.

usage: report.py RAW.tsv OUT.json "PLACEMENTS" REPS HAVE_SHARED HAVE_CLIENT DAEMON_SCHED
"""
import json
import os
import platform
import statistics
import sys
import time

raw_path, out_path, placements, reps, have_shared, have_client, daemon_sched = sys.argv[1:8]
placements = placements.split()
IMPLS = ("udp", "libcoap", "coapclientd")

runs = {}
for line in open(raw_path):
    p, fig, impl, val = line.rstrip("\n").split("\t")
    runs.setdefault(p, {}).setdefault(fig, {}).setdefault(impl, []).append(float(val))


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


figures = {p: {f: {i: stats(v) for i, v in by_impl.items()} for f, by_impl in by_fig.items()}
           for p, by_fig in runs.items()}


def med(p, fig, impl):
    s = figures.get(p, {}).get(fig, {}).get(impl)
    return s["median"] if s else None


# Figures the baselines do not measure directly, derived from their sequential rate: the mean
# round trip (1 / rate) stands in for latency, and 1 KiB x sequential rate is the block-wise
# floor (one 1 KiB block per round trip).
for p in figures:
    for impl in ("udp", "libcoap"):
        rate = med(p, "rps_w1", impl)
        if rate:
            for fig in ("lat_p50_us", "lat_p99_us"):
                figures[p].setdefault(fig, {})[impl] = {"median": 1e6 / rate, "derived": True}
    rate = med(p, "rps_w1", "udp")
    if rate:
        for fig in ("get_mbps", "put_mbps"):
            figures[p].setdefault(fig, {})["udp"] = {"median": rate * 1024 / 1e6,
                                                     "derived": True}

# The external-loop rows (figure names ending _x) compare with the same baseline readings.
RATE_FIGS = ("rps_w1", "rps_w32", "get_mbps", "put_mbps", "lat_p50_us", "lat_p99_us",
             "app_us_w1", "app_us_w32")
for p in figures:
    for fig in RATE_FIGS:
        if fig + "_x" in figures[p]:
            for impl in ("udp", "libcoap"):
                if impl in figures[p].get(fig, {}):
                    figures[p][fig + "_x"][impl] = figures[p][fig][impl]

# Client-side CPU per request: the whole libcoap client, against the application with the
# library's thread plus dbus-daemon plus coapclientd (the design floor: its app plus its relay).
for p in figures:
    for w in ("w1", "w32", "w1_x", "w32_x"):
        parts = [med(p, f"{k}_{w}", "coapclientd") for k in ("app_us", "bus_us", "cpu_us")]
        row = figures[p].setdefault(f"client_us_{w}", {})
        if None not in parts:
            row["coapclientd"] = {"median": sum(parts), "derived": True}
        parts = [med(p, f"{k}_{w}", "floor") for k in ("app_us", "cpu_us")]
        if None not in parts:
            row["floor"] = {"median": sum(parts), "derived": True}
        if med(p, f"app_us_{w}", "libcoap") is not None:
            row["libcoap"] = figures[p][f"app_us_{w}"]["libcoap"]

ROWS = [
    ("rps_w1", "sequential CON GET, req/s"),
    ("rps_w32", "32 in flight, req/s"),
    ("get_mbps", "1 MiB block-wise GET, MB/s"),
    ("put_mbps", "1 MiB block-wise PUT, MB/s"),
    ("lat_p50_us", "latency p50 (sequential), us"),
    ("lat_p99_us", "latency p99 (sequential), us"),
    ("app_us_w1", "app CPU per request (seq), us"),
    ("bus_us_w1", "dbus-daemon CPU per request (seq), us"),
    ("cpu_us_w1", "coapclientd CPU per request (seq), us"),
    ("client_us_w1", "client-side CPU per request (seq), us"),
    ("app_us_w32", "app CPU per request (32), us"),
    ("bus_us_w32", "dbus-daemon CPU per request (32), us"),
    ("cpu_us_w32", "coapclientd CPU per request (32), us"),
    ("client_us_w32", "client-side CPU per request (32), us"),
    ("rss_idle_kib", "daemon RSS idle, KiB"),
    ("rss_ctx_1000", "RSS per idle context (1,000), B"),
    ("rss_ctx_10000", "RSS per idle context (10,000), B"),
    ("rss_inflight", "RSS per request in flight, B"),
    ("cpu_us_ctx_10", "daemon CPU/req, 10 contexts, us"),
    ("cpu_us_ctx_1000", "daemon CPU/req, 1,000 contexts, us"),
    ("cpu_us_ctx_10000", "daemon CPU/req, 10,000 contexts, us"),
    ("rps_w1_x", "external loop: sequential, req/s"),
    ("rps_w32_x", "external loop: 32 in flight, req/s"),
    ("get_mbps_x", "external loop: 1 MiB GET, MB/s"),
    ("put_mbps_x", "external loop: 1 MiB PUT, MB/s"),
    ("lat_p50_us_x", "external loop: latency p50 (seq), us"),
    ("client_us_w1_x", "external loop: client CPU (seq), us"),
    ("cpu_us_w32_x", "external loop: daemon CPU (32), us"),
]


def fmt(s):
    if not s:
        return "-"
    m = s["median"]
    text = f"{m:,.0f}" if abs(m) >= 100 else f"{m:.2f}"
    if s.get("derived"):
        return text + "*"
    if len(s.get("runs", [])) > 1:
        lo, hi = s["min"], s["max"]
        text += f" [{lo:,.0f}..{hi:,.0f}]" if abs(m) >= 100 else f" [{lo:.1f}..{hi:.1f}]"
    return text


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


print()
print(f"coapclientd benchmark: medians of {reps} runs [min..max]; host {platform.node()}, "
      f"{os.cpu_count()} CPUs")
print("split = peer CPU 0, client side (bench program, dbus-daemon, coapclientd) CPU 1; "
      "same = all on CPU 0;\nfree = peer CPU 0, bench program CPU 1, dbus-daemon and coapclientd "
      "unpinned (the baselines as split)")
print(f"coapclientd's scheduling policy: {daemon_sched}"
      + (" (as units/coapclientd.service runs it)" if daemon_sched == "batch" else ""))
if have_shared != "1":
    print("../shared/bench is absent: no udp (1) and libcoap (2) columns")
if have_client != "1":
    print("coapclientd / libcoapclient not built: no coapclientd (3) column")
if any(figures.get(p, {}).get(fig) for p in placements for fig, _ in ROWS):
    header = (f"{'figure':<38} {'place':<5} {'(1) udp':>26} {'(2) libcoap':>26} "
              f"{'(3) coapclientd':>26} {'3/2':>5} {'3/1':>5}")
    print(header)
    print("-" * len(header))
    for p in placements:
        for fig, label in ROWS:
            row = figures.get(p, {}).get(fig)
            if not row:
                continue
            c = [row.get(i) for i in IMPLS]
            m = [s["median"] if s else None for s in c]
            print(f"{label:<38} {p:<5} {fmt(c[0]):>26} {fmt(c[1]):>26} {fmt(c[2]):>26} "
                  f"{ratio(m[2], m[1]):>5} {ratio(m[2], m[0]):>5}")
    for p in placements:
        for w, label in (("rps_w1", "sequential"), ("rps_w32", "32 in flight")):
            floor, ours = med(p, w, "dbus"), med(p, w, "coapclientd")
            if floor:
                print(f"D-Bus floor ({p}, {label}): {floor:,.0f} call+reply+signal/s through "
                      f"dbus-daemon; coapclientd reaches {ratio(ours, floor)} of it")
    for p in placements:
        sc, rt = med(p, "floor_syscall_ns", "machine"), med(p, "floor_thread_rt_us", "machine")
        if sc and rt:
            print(f"machine ({p}, bench program's CPU): a system call {sc:,.0f} ns, a round trip "
                  f"between two threads on one CPU {rt:.1f} us (two wake-ups and context "
                  f"switches, four system calls)")
    for p in placements:
        f = {fig: med(p, fig, "floor") for fig in ("rps_w1", "rps_w1_x", "rps_w32", "rps_w32_x",
                                                   "client_us_w1", "client_us_w1_x",
                                                   "cpu_us_w32", "cpu_us_w32_x")}
        lib = {fig: med(p, fig, "libcoap") for fig in ("rps_w1", "rps_w32", "app_us_w1")}
        if None in f.values():
            continue
        print(f"design floor ({p}; bench/design-floor.c: coapclientd's path, app -> data channel "
              f"-> relay process -> peer and back, with no work done on it), library thread / "
              f"app's loop:\n  sequential {f['rps_w1']:,.0f} / {f['rps_w1_x']:,.0f} req/s "
              f"({ratio(f['rps_w1'], lib['rps_w1'])} / {ratio(f['rps_w1_x'], lib['rps_w1'])} "
              f"libcoap); 32 in flight {f['rps_w32']:,.0f} / {f['rps_w32_x']:,.0f} "
              f"({ratio(f['rps_w32'], lib['rps_w32'])} / {ratio(f['rps_w32_x'], lib['rps_w32'])}"
              f"); client-side CPU per sequential request {f['client_us_w1']:.1f} / "
              f"{f['client_us_w1_x']:.1f} us ({ratio(f['client_us_w1'], lib['app_us_w1'])} / "
              f"{ratio(f['client_us_w1_x'], lib['app_us_w1'])} libcoap's); the relay's CPU per "
              f"request at 32 in flight {f['cpu_us_w32']:.1f} / {f['cpu_us_w32_x']:.1f} us")
    print("* derived: baseline latency = 1/sequential rate; block-wise floor = 1 KiB x sequential "
          "UDP rate; client-side CPU = app + dbus-daemon + coapclientd (medians)")


# The scale scenarios: one reading each, placement split.
def scale_value(fig):
    return med("split", fig, "coapclientd")


obs_counts = sorted({int(f.rsplit("_", 1)[1]) for f in figures.get("split", {})
                     if f.startswith("obs_reg_s_")})
if obs_counts:
    print()
    print("scale: N observations, 100 per caller process, one socket each; the peer notifies each "
          "once a second (NON);\nthe notifications of its next 10 ticks, counted by Observe value "
          "(placement split, one reading each)")
    head = (f"{'observations':>12} {'registered in s':>16} {'delivered / sent':>18} "
            f"{'out of order':>12} {'daemon CPU %':>12} {'RSS KiB':>8} {'us/notif.':>9} "
            f"{'peer CPU %':>10} {'callers gone, ms CPU':>20} {'RSS 3 s later':>13}")
    print(head)
    print("-" * len(head))
    for n in obs_counts:
        v = {k: scale_value(f"obs_{k}_{n}") for k in ("reg_s", "registered", "expected",
                                                      "delivered", "ooo", "cpu_pct", "rss_kib",
                                                      "us", "peer_cpu_pct", "leave_cpu_ms",
                                                      "rss_after_kib")}

        def num(x, f="{:,.0f}"):
            return "-" if x is None or x < 0 else f.format(x)
        reg = num(v["reg_s"], "{:.2f}")
        if v["registered"] is not None and v["registered"] < n:
            reg = f"{v['registered']:,.0f} only"
        print(f"{n:>12,} {reg:>16} {num(v['delivered']) + ' / ' + num(v['expected']):>18} "
              f"{num(v['ooo']):>12} {num(v['cpu_pct'], '{:.1f}'):>12} {num(v['rss_kib']):>8} "
              f"{num(v['us'], '{:.1f}'):>9} {num(v['peer_cpu_pct'], '{:.1f}'):>10} "
              f"{num(v['leave_cpu_ms']):>20} {num(v['rss_after_kib']):>13}")
up = scale_value("dtls_up")
if up is not None:
    print(f"DTLS (PSK, coap-server-gnutls, at most 64 handshakes under way): {up:,.0f} sessions "
          f"held, {scale_value('dtls_hs_per_s') or 0:,.0f} handshakes/s, "
          f"{scale_value('dtls_rss_b') or 0:,.0f} B daemon RSS per session (socket, session, an "
          f"observation),\n  daemon CPU {scale_value('dtls_cpu_us') or 0:,.0f} us per handshake "
          f"(and its GET); the peer's CPU {scale_value('dtls_peer_cpu_s') or 0:.1f} s")
idle = scale_value("idle_wakeups")
if idle is not None:
    print(f"idle daemon: {idle:.0f} context switches (wake-ups) in 10 s")

# Issue 15's targets, then the first release's memory promises. Kinds: "ratio" (to libcoap, at
# least), "ratio_max" (to libcoap, at most), "max" (at most), "below" (less than).
TARGETS = [
    ("sequential >= 0.5x libcoap", "rps_w1", "ratio", 0.5),
    ("32 in flight >= 1.2x libcoap", "rps_w32", "ratio", 1.2),
    ("1 MiB GET >= 1.1x libcoap MB/s", "get_mbps", "ratio", 1.1),
    ("1 MiB PUT >= 1.1x libcoap MB/s", "put_mbps", "ratio", 1.1),
    ("client-side CPU (seq) <= 2x libcoap", "client_us_w1", "ratio_max", 2.0),
    ("daemon CPU per request (32) <= 5 us", "cpu_us_w32", "max", 5),
    ("ext. loop: sequential >= 0.5x", "rps_w1_x", "ratio", 0.5),
    ("ext. loop: 32 in flight >= 1.2x", "rps_w32_x", "ratio", 1.2),
    ("ext. loop: 1 MiB GET >= 1.1x", "get_mbps_x", "ratio", 1.1),
    ("ext. loop: 1 MiB PUT >= 1.1x", "put_mbps_x", "ratio", 1.1),
    ("ext. loop: client CPU (seq) <= 2x", "client_us_w1_x", "ratio_max", 2.0),
    ("ext. loop: daemon CPU (32) <= 5 us", "cpu_us_w32_x", "max", 5),
    ("daemon RSS idle < 4 MiB", "rss_idle_kib", "below", 4096),
    ("< 1 KiB per idle context (1,000)", "rss_ctx_1000", "below", 1024),
    ("< 1 KiB per idle context (10,000)", "rss_ctx_10000", "below", 1024),
    ("< 4 KiB per request in flight", "rss_inflight", "below", 4096),
]
targets = []
print()
print("targets")
for name, fig, kind, limit in TARGETS:
    for p in placements:
        value, floor = med(p, fig, "coapclientd"), med(p, fig, "floor")
        if value is None:
            continue
        if kind.startswith("ratio"):
            base = med(p, fig, "libcoap")
            if not base:
                continue
            value = value / base
            floor = floor / base if floor is not None else None
            met = value >= limit if kind == "ratio" else value <= limit
        elif kind == "max":
            met = value <= limit
        else:
            met = value < limit
        targets.append({"target": name, "placement": p, "value": value, "met": met,
                        "design_floor": floor})
        print(f"  {'met    ' if met else 'NOT MET'}  {name:<36} {p:<5} {value:,.2f}"
              + (f"   (design floor {floor:,.2f})" if floor is not None else ""))


def scale_target(name, met, value):
    targets.append({"target": name, "placement": "split", "value": value, "met": met})
    print(f"  {'met    ' if met else 'NOT MET'}  {name:<36} split {value:,.2f}")


top = max(obs_counts) if obs_counts else None
if top == 10000:
    v = {k: scale_value(f"obs_{k}_{top}") for k in ("reg_s", "registered", "expected",
                                                    "delivered", "ooo", "cpu_pct", "rss_kib")}
    reg = v["reg_s"] if v["registered"] == top and v["reg_s"] is not None else float("inf")
    scale_target("10,000 observations registered <= 5 s", reg <= 5, reg)
    share = (v["delivered"] or 0) / v["expected"] if v["expected"] else 0
    scale_target("every notification, in order", share == 1 and v["ooo"] == 0, share)
    cpu = v["cpu_pct"] if v["cpu_pct"] is not None else float("inf")
    scale_target("daemon CPU <= 10% (10,000 observers)", cpu <= 10, cpu)
    rss = (v["rss_kib"] or float("inf")) / 1024
    scale_target("daemon RSS <= 16 MiB (10,000)", rss <= 16, rss)
    low = min(obs_counts)
    small, large = scale_value(f"obs_us_{low}"), scale_value(f"obs_us_{top}")
    if low < top and small and large and large > 0:
        # a daemon that falls behind spends less per notification it manages to deliver
        scale_target(f"CPU/notification flat (10,000 / {low:,})",
                     large / small <= 1.5 and share == 1, large / small)
if idle is not None:
    scale_target("idle daemon: no wake-ups in 10 s", idle == 0, idle)

with open(out_path, "w") as f:
    json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
               "cpus": os.cpu_count(), "reps": int(reps), "placements": placements,
               "placement_note": "split: peer CPU 0, client side CPU 1; same: all on CPU 0; "
                                 "free: peer CPU 0, app CPU 1, dbus-daemon and coapclientd "
                                 "unpinned",
               "daemon_sched": daemon_sched, "figures": figures, "targets": targets}, f,
              indent=1, sort_keys=True)
    f.write("\n")
print(f"\nwritten: {out_path}")
