from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsite.core.roles import researcher_required


@researcher_required
def family_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registry/families.html", {})
