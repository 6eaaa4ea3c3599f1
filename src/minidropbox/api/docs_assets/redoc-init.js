// ReDoc for this API's schema; fonts are the browser's own (no font service).
Redoc.init("/openapi.json", { disableGoogleFont: true }, document.getElementById("redoc"));
