"""Views of the eval app: pages (list/start/run), browse (images, compare, downloads)."""

from evalsite.evals.views.browse import (
    compare_view,
    run_csv_view,
    run_file_view,
    run_item_view,
    run_items_view,
    run_json_view,
)
from evalsite.evals.views.compare import compare_intervals_view
from evalsite.evals.views.pages import (
    run_cancel_view,
    run_detail_view,
    run_list_view,
    run_progress_view,
    run_reproduce_view,
    run_rerun_view,
    run_start_view,
)

__all__ = [
    "compare_intervals_view",
    "compare_view",
    "run_cancel_view",
    "run_csv_view",
    "run_detail_view",
    "run_file_view",
    "run_item_view",
    "run_items_view",
    "run_json_view",
    "run_list_view",
    "run_progress_view",
    "run_reproduce_view",
    "run_rerun_view",
    "run_start_view",
]
