"""FID-2k against images seen for every model's campaign log (campaign/NAME.log.csv), one
line per model through the shipped sessions (hollow markers: measured, not shipped), into
docs/campaign-fid.png. Run from anywhere: python3 campaign/plot.py"""
import csv
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).resolve().parent
fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
for log in sorted(here.glob("*.log.csv")):
    rows = [r for r in csv.DictReader(log.open()) if r["fid_2k"]]

    def points(shipped):
        kept = [r for r in rows if (r.get("shipped", "yes") == "yes") == shipped]
        return [int(r["images_seen"]) / 1000 for r in kept], [float(r["fid_2k"]) for r in kept]

    (line,) = ax.plot(*points(True), marker="o", label=log.name.removesuffix(".log.csv"))
    # A session measured and not shipped (no better than the model before it): hollow.
    ax.plot(*points(False), marker="o", linestyle="none", color=line.get_color(),
            markerfacecolor="none")
ax.set_xlabel("images seen (thousands)")
ax.set_ylabel("FID-2k (lower is better)")
ax.set_title("retrato's models across training sessions")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
out = here.parent / "docs" / "campaign-fid.png"
fig.savefig(out)
print(out)
