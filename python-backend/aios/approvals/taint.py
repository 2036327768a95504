"""A run that has read the user's data (a file, a listing, an attachment) is tainted: from
then on, a request to a site the run has not reached since it read that data may carry it
out, so it needs the `<tool>.tainted` level (by default: ask). The check runs before the
tool does anything, whatever the tool does underneath."""

from urllib.parse import urlsplit

TAINTED = "approvals.tainted"  # ctx.state: what user data the run has read
VISITED = "approvals.visited"  # ctx.state: the sites reached since the run was tainted


def mark_user_data(ctx, what: str) -> None:
    """The run has read user data (`what` says which, for the approval's reason). Sites
    visited before count as new again: the page that asked for the data may be the one it
    would go to."""
    if not tainted(ctx):
        ctx.state[VISITED] = set()
    ctx.state.setdefault(TAINTED, []).append(what)


def tainted(ctx) -> bool:
    return bool(ctx.state.get(TAINTED))


def site(url: str) -> str:
    """scheme://host[:port], the host without a leading `www.`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def check_navigation(ctx, tool: str, url: str) -> None:
    """Before `tool` reaches `url`: a tainted run asks (ctx.approve, `<tool>.tainted`) for
    a site it has not reached since it read the data; ToolError when refused."""
    try:
        target = site(url)
    except ValueError:
        target = url  # an unparsable URL is the tool's to refuse; it is asked about as is
    visited = ctx.state.setdefault(VISITED, set())
    if tainted(ctx) and target not in visited:
        read = ", ".join(ctx.state[TAINTED][-3:])
        ctx.approve(f"{tool}.tainted", f"the run has read your data ({read}) and now wants "
                    f"to open {url}, a site it has not visited since: what it read may be "
                    "sent there", {"url": url})
    visited.add(target)
