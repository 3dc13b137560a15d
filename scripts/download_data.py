"""Download the public copy of the data and check it before it is used."""

import urllib.request

from hbm import io
from hbm.data import InputError, sha256_normalised


def download(url: str, out_path, sha256: str, log_path=None, timeout: float = 60):
    log = io.setup_logging(log_path)
    if not url:
        raise InputError(f"data file {out_path} is missing and config key 'data.url' is empty")
    log.info("downloading %s", url)
    with io.atomic_path(out_path) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                tmp.write_bytes(response.read())
        except OSError as err:
            raise InputError(f"data file {out_path} is missing and could not be downloaded from {url}: {err}") from None
        found = sha256_normalised(tmp)
        if sha256 and found != sha256:
            raise InputError(
                f"downloaded file from {url} has sha256 {found} (line endings normalised), expected {sha256}"
            )
    log.info("saved %s (sha256 %s)", out_path, found)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(download, sm.params.url, sm.output[0], sm.params.sha256, sm.log[0])
