from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsite.core.roles import annotator_required


@annotator_required
def next_task(request: HttpRequest) -> HttpResponse:
    return render(request, "ratings/next.html", {})
