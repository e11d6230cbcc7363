// Live previews of the edit forms. The server renders Markdown fields with the
// sanitiser the pages use. A Sigma rule is queued for a worker, and this script polls
// for the converted query. Without this script the forms still save, without previews.
(function () {
  "use strict";

  // Milliseconds without typing before a preview is requested.
  var DEBOUNCE_MS = 400;
  // Milliseconds between polls of a queued Sigma preview, and polls before giving up.
  var POLL_INTERVAL_MS = 500;
  var MAX_POLLS = 120;

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function debounce(callback) {
    var timer = null;
    return function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(callback, DEBOUNCE_MS);
    };
  }

  function postText(form, url, text) {
    var body = new FormData();
    body.append("text", text);
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" },
    }).then(readJson);
  }

  function readJson(response) {
    var type = response.headers.get("Content-Type") || "";
    // An expired session redirects to the login page, which fetch follows.
    if (response.redirected || type.indexOf("application/json") !== 0) {
      throw new Error("you are signed out or the server failed (HTTP " + response.status + "); reload the page");
    }
    return response.json().then(function (body) {
      if (!response.ok) {
        throw new Error(body.error || "HTTP " + response.status);
      }
      return body;
    });
  }

  function setUpMarkdownPreview(form, textarea) {
    var url = form.getAttribute("data-markdown-preview-url");
    var target = form.querySelector('[data-preview-for="' + textarea.id + '"]');
    if (!url || !target) {
      return;
    }
    // Responses can arrive out of order, so only the latest request's response is shown.
    var latest = 0;

    function refresh() {
      var sequence = ++latest;
      postText(form, url, textarea.value).then(
        function (body) {
          if (sequence === latest) {
            // The server sanitised this HTML with the same allow-list as the pages.
            target.innerHTML = body.html;
          }
        },
        function (error) {
          if (sequence === latest) {
            target.textContent = "Preview failed: " + error.message;
          }
        }
      );
    }

    textarea.addEventListener("input", debounce(refresh));
    target.closest(".markdown-preview").hidden = false;
    refresh();
  }

  function setUpSigmaPreview(form, area) {
    var url = area.getAttribute("data-sigma-preview-url");
    var textarea = area.querySelector("textarea");
    var panel = area.querySelector(".sigma-preview");
    var status = area.querySelector("[data-sigma-preview-status]");
    var query = area.querySelector("[data-sigma-preview-query]");
    var targetLabel = area.querySelector("[data-sigma-preview-target]");
    var latest = 0;

    function show(preview) {
      targetLabel.textContent = preview.target_label;
      if (!preview.finished) {
        status.textContent = "Converting on a worker (" + preview.status + ")…";
        return;
      }
      if (preview.error) {
        status.textContent =
          (preview.error_line ? "Line " + preview.error_line + ": " : "") + preview.error;
        status.className = "field-error";
        query.textContent = "";
        query.hidden = true;
        return;
      }
      status.className = "muted";
      status.textContent = preview.warnings.length
        ? preview.warnings.map(function (warning) { return warning.message; }).join(" ")
        : "Converted with pySigma.";
      query.textContent = preview.query;
      query.hidden = false;
    }

    function poll(sequence, statusUrl, remaining) {
      if (sequence !== latest) {
        return;
      }
      fetch(statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(readJson)
        .then(function (preview) {
          if (sequence !== latest) {
            return;
          }
          show(preview);
          if (!preview.finished) {
            if (remaining <= 0) {
              status.textContent = "No worker converted the rule in time; is a worker running on the render queue?";
              return;
            }
            window.setTimeout(function () {
              poll(sequence, statusUrl, remaining - 1);
            }, POLL_INTERVAL_MS);
          }
        })
        .catch(function (error) {
          if (sequence === latest) {
            status.textContent = "Preview failed: " + error.message;
          }
        });
    }

    function refresh() {
      var sequence = ++latest;
      status.className = "muted";
      status.textContent = "Sending the rule to a worker…";
      postText(form, url, textarea.value).then(
        function (preview) {
          if (sequence === latest) {
            show(preview);
            poll(sequence, preview.url, MAX_POLLS);
          }
        },
        function (error) {
          if (sequence === latest) {
            status.textContent = "Preview failed: " + error.message;
          }
        }
      );
    }

    textarea.addEventListener("input", debounce(refresh));
    panel.hidden = false;
    refresh();
  }

  // Selects line `number` (from 1) of a textarea and scrolls it into view.
  function selectLine(textarea, number) {
    var lines = textarea.value.split("\n");
    if (number < 1 || number > lines.length) {
      return;
    }
    var start = lines.slice(0, number - 1).join("\n").length + (number > 1 ? 1 : 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + lines[number - 1].length);
    var lineHeight = textarea.scrollHeight / Math.max(lines.length, 1);
    textarea.scrollTop = Math.max(0, (number - 3) * lineHeight);
  }

  // After a rejected save, the caret goes to the line of the Sigma rule error.
  document.querySelectorAll("[data-error-line]").forEach(function (area) {
    var textarea = area.querySelector("textarea");
    if (textarea) {
      selectLine(textarea, parseInt(area.getAttribute("data-error-line"), 10));
    }
  });

  document.querySelectorAll("form[data-markdown-preview-url]").forEach(function (form) {
    form.querySelectorAll(".markdown-editor textarea").forEach(function (textarea) {
      setUpMarkdownPreview(form, textarea);
    });
    form.querySelectorAll("[data-sigma-preview-url]").forEach(function (area) {
      setUpSigmaPreview(form, area);
    });
  });
})();
