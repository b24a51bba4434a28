// The API reference page: Swagger UI renders /api/v1/openapi.json (a file, not an inline script,
// so the page keeps the strict Content-Security-Policy).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var root = document.getElementById("api-reference");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
  });
});
