"""The trend of one gate finding over the recorded runs (``check --trend``)."""

from __future__ import annotations

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from traceanalyzer.plot import style


def plot_finding_trend(trend: pd.DataFrame, title: str = "") -> Figure:
    """Two panels over runs: the finding's count, and bytes: the finding's, and its traces'
    two leak figures, each its own line (held at trace end, left behind at process exit;
    a mapping left by an exited process is in both, so they are never added up).

    ``trend`` is :func:`traceanalyzer.gate.history.finding_trend`'s table. Returns a
    matplotlib ``Figure`` (not attached to pyplot; shown inline in Jupyter).
    """
    with matplotlib.rc_context(style.rc_params()):
        fig = style.new_figure(figsize=(8, 5), layout="constrained")
        ax_count, ax_bytes = fig.subplots(2, 1, sharex=True)
        x = list(range(len(trend)))
        ax_count.plot(x, trend["count"], marker="o", drawstyle="steps-mid",
                      color=style.process_color(1))
        ax_count.set_ylabel("occurrences")
        ax_count.set_ylim(bottom=0)
        ax_bytes.plot(x, trend["bytes"], marker="o", label="finding bytes",
                      color=style.process_color(4))
        ax_bytes.plot(x, trend["bytes_at_end"], marker="s",
                      label="held at trace end", color=style.process_color(0))
        ax_bytes.plot(x, trend["bytes_leaked_at_exit"], marker="^", linestyle="--",
                      label="left behind at process exit", color=style.process_color(2))
        ax_bytes.set_ylabel("bytes")
        ax_bytes.set_ylim(bottom=0)
        ax_bytes.yaxis.set_major_formatter(style.byte_ticks_formatter())
        ax_bytes.legend(loc="upper left")
        labels = [pd.Timestamp(t).strftime("%Y-%m-%d\n%H:%M") if pd.notna(t) else r
                  for t, r in zip(trend["time_utc"], trend["run"])]
        ax_bytes.set_xticks(x, labels)
        ax_bytes.set_xlabel("run (UTC)")
        if title:
            fig.suptitle(style.plot_text(title))
    return fig
