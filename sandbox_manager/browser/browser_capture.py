"""Capture actions of the session: a screenshot of the active tab, and a download a click
starts (read back in full, up to max_bytes). Mixed into browser_session.Session, whose refs
and timeouts it uses.
"""

import base64
import mimetypes
import os

from playwright.sync_api import Error as PlaywrightError

import browser_args as check
from browser_errors import ActionError


class CaptureActions:
    """screenshot, download: each (page, args) -> the answer."""

    def screenshot(self, page, args: dict) -> dict:
        check.check_known(args, ("full_page",), "screenshot")
        png = page.screenshot(full_page=check.flag(args, "full_page"), type="png",
                              timeout=self._ms())
        return {"url": page.url, "png_base64": base64.b64encode(png).decode()}

    def download(self, page, args: dict) -> dict:
        check.check_known(args, ("ref", "max_bytes"), "download")
        ref = check.ref(args)
        max_bytes = check.integer(args, "max_bytes", check.DOWNLOAD_MAX_BYTES, 1,
                                  check.DOWNLOAD_CEILING)
        locator = self._locate(page, ref)
        try:
            with page.expect_download(timeout=self._ms()) as started:
                locator.click(timeout=self._ms())
            download = started.value
        except PlaywrightError as exc:
            if "Timeout" in type(exc).__name__ or "Timeout" in str(exc):
                raise ActionError("timeout", f"clicking {ref} started no download within "
                                             f"{self.timeout_s:g} s") from None
            raise
        try:
            return read_download(download, max_bytes)
        finally:
            try:
                download.delete()
            except PlaywrightError:
                pass  # a failed download left nothing to delete


def read_download(download, max_bytes: int) -> dict:
    failure = download.failure()
    if failure:
        raise ActionError("failed", f"the download failed: {failure} (a full /tmp cancels it)")
    path = download.path()
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ActionError("too_large", f"the download is {size} bytes, over the limit of "
                                       f"{max_bytes}")
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(download.suggested_filename or "download") or "download"
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"name": name, "mime": mime, "size": size,
            "data_base64": base64.b64encode(data).decode()}
