"""The sandbox's matplotlib backend (MPLBACKEND=module://aios_figures): there is no screen,
so a figure that is shown, or left open and changed when a run or an exec ends, is saved
as a PNG under ~/outputs, which the supervisor returns with the result.

Agg draws; this module only decides when to save. `plt.show()` saves and closes every open
figure, as closing its window would; figures left open are saved when they changed since
they were last saved (matplotlib marks them `stale`) and stay open, so an interpreter
session can keep drawing on them. Past AIOS_MAX_OUTPUTS files in ~/outputs a figure is
not drawn at all: a loop making thousands of figures costs no rendering."""

import atexit
import os

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase
OUTPUTS = os.path.join(os.path.expanduser("~"), "outputs")
DROPPED = "/tmp/.aios-figures-dropped"  # one line per figure not saved, for the supervisor
_counter = 0


def _room():
    try:
        return len(os.listdir(OUTPUTS)) < int(os.environ.get("AIOS_MAX_OUTPUTS", "32"))
    except OSError:
        return True


def _next_path():
    global _counter
    while True:
        _counter += 1
        path = os.path.join(OUTPUTS, f"figure-{_counter}.png")
        if not os.path.exists(path):
            return path


def save(figure):
    """Render one figure into ~/outputs (written aside, then renamed: never seen half done)."""
    if not _room():
        with open(DROPPED, "a") as f:
            f.write("figure\n")
        figure.stale = False
        return
    os.makedirs(OUTPUTS, exist_ok=True)
    path = _next_path()
    partial = path + ".partial"
    try:
        figure.savefig(partial, format="png")
        os.replace(partial, path)
        figure.stale = False  # savefig leaves it stale (it sets and restores the dpi)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def save_changed():
    """Figures left open that changed since they were last saved; they stay open."""
    for manager in Gcf.get_all_fig_managers():
        if manager.canvas.figure.stale:
            save(manager.canvas.figure)


def show(*args, **kwargs):
    """plt.show(): save every open figure, then close them all."""
    for manager in Gcf.get_all_fig_managers():
        save(manager.canvas.figure)
    Gcf.destroy_all()


atexit.register(save_changed)  # a script's figures left open when it ends
