def boom(request):
    raise RuntimeError("the adopting project's view failed")
