"""A shareable report of a run: one self-contained HTML file (summary, duplicate groups,
leakage, quality lists, metrics beside baselines) that makes no request when opened."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ReportContents": "contents",
    "gather": "contents",
    "FilmPictures": "images",
    "jpeg_data_uri": "images",
    "render": "render",
    "ReportError": "output",
    "WrittenReport": "write",
    "check_output": "output",
    "report_html": "write",
    "write_report": "write",
})

__all__ = [
    "ReportContents",
    "gather",
    "FilmPictures",
    "jpeg_data_uri",
    "render",
    "ReportError",
    "WrittenReport",
    "check_output",
    "report_html",
    "write_report",
]
