"""FID against images seen for every model's campaign log (campaign/NAME.log.csv), one line
per model through the shipped sessions (hollow markers: measured, not shipped), into
docs/campaign-fid.png: FID-2k models on the left, the painted portraits' FID-200 (200
held-out paintings only, a different scale) on the right. Run from anywhere:
python3 campaign/plot.py"""
import csv
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).resolve().parent
fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), dpi=120)
panels = {"fid_2k": axes[0], "fid_200": axes[1]}
# One colour per model across both panels.
for colour, log in enumerate(sorted(here.glob("*.log.csv"))):
    rows = list(csv.DictReader(log.open()))
    metric = "fid_2k" if "fid_2k" in rows[0] else "fid_200"
    ax = panels[metric]
    rows = [r for r in rows if r[metric]]

    def points(shipped):
        kept = [r for r in rows if (r.get("shipped", "yes") == "yes") == shipped]
        return [int(r["images_seen"]) / 1000 for r in kept], [float(r[metric]) for r in kept]

    (line,) = ax.plot(*points(True), marker="o", color=f"C{colour}",
                      label=log.name.removesuffix(".log.csv"))
    # A session measured and not shipped (no better than the model before it): hollow.
    ax.plot(*points(False), marker="o", linestyle="none", color=line.get_color(),
            markerfacecolor="none")
for metric, ax in panels.items():
    ax.set_xlabel("images seen (thousands)")
    ax.set_ylabel(f"{metric.replace('fid_', 'FID-')} (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle("retrato's models across training sessions")
fig.tight_layout()
out = here.parent / "docs" / "campaign-fid.png"
fig.savefig(out)
print(out)
