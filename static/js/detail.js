// Tabs, copy buttons and the render status poll of the detection page. Without this
// script every panel stays visible, the copy buttons stay hidden and the page does not
// refresh by itself, so it still works without JavaScript.
(function () {
  "use strict";

  // sessionStorage key of the tab to select again after the render poll reloads the page.
  var RESTORE_TAB_KEY = "detail-tab:" + window.location.pathname;

  // Storage access throws where the browser blocks it, and then no tab is restored.
  function takeStoredTabId() {
    try {
      var id = window.sessionStorage.getItem(RESTORE_TAB_KEY);
      window.sessionStorage.removeItem(RESTORE_TAB_KEY);
      return id;
    } catch (error) {
      return null;
    }
  }

  function storeTabId(id) {
    try {
      window.sessionStorage.setItem(RESTORE_TAB_KEY, id);
    } catch (error) {
      // The first tab is selected after the reload instead.
    }
  }

  function setUpTabs(area) {
    var tabList = area.querySelector("[role=tablist]");
    var tabs = tabList ? Array.prototype.slice.call(tabList.querySelectorAll("[role=tab]")) : [];
    // With a single panel there is nothing to switch between, so it stays visible.
    if (tabs.length < 2) {
      return;
    }

    function panelOf(tab) {
      return document.getElementById(tab.getAttribute("aria-controls"));
    }

    // On narrow screens the stylesheet shows this select in place of the tab bar.
    var tabSelect = area.querySelector("[data-tab-select]");

    function select(tab, moveFocus) {
      tabs.forEach(function (other) {
        var selected = other === tab;
        other.setAttribute("aria-selected", String(selected));
        other.tabIndex = selected ? 0 : -1;
        panelOf(other).hidden = !selected;
      });
      if (tabSelect) {
        tabSelect.value = tab.id;
      }
      if (moveFocus) {
        tab.focus();
      }
    }

    function tabById(id) {
      return tabs.filter(function (tab) {
        return tab.id === id;
      })[0];
    }

    // A link to an element in a hidden panel (a branch's Sigma rule, or a URL
    // fragment) first selects that panel's tab, then scrolls to the element.
    function revealHashTarget() {
      var id = decodeURIComponent(window.location.hash.slice(1));
      var target = id && document.getElementById(id);
      if (!target) {
        return;
      }
      tabs.forEach(function (tab) {
        if (panelOf(tab).contains(target) && tab.getAttribute("aria-selected") !== "true") {
          select(tab, false);
          target.scrollIntoView();
        }
      });
    }

    tabs.forEach(function (tab, index) {
      tab.addEventListener("click", function () {
        select(tab, false);
      });
      tab.addEventListener("keydown", function (event) {
        var step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        var next;
        if (step) {
          next = tabs[(index + step + tabs.length) % tabs.length];
        } else if (event.key === "Home") {
          next = tabs[0];
        } else if (event.key === "End") {
          next = tabs[tabs.length - 1];
        } else {
          return;
        }
        event.preventDefault();
        select(next, true);
      });
    });

    if (tabSelect) {
      tabSelect.addEventListener("change", function () {
        var tab = tabById(tabSelect.value);
        if (tab) {
          select(tab, false);
        }
      });
      tabSelect.closest(".tab-select-field").hidden = false;
    }

    // Before the render poll reloads the page it stores the selected tab here.
    area.addEventListener("detail:before-reload", function () {
      var current = tabs.filter(function (tab) {
        return tab.getAttribute("aria-selected") === "true";
      })[0];
      if (current) {
        storeTabId(current.id);
      }
    });

    tabList.hidden = false;
    area.classList.add("tabs-enabled");
    select(tabById(takeStoredTabId()) || tabs[0], false);
    revealHashTarget();
    window.addEventListener("hashchange", revealHashTarget);
  }

  // execCommand is the fallback where navigator.clipboard is missing or rejects the
  // write, for example on a page served over plain http from a host other than localhost.
  function copyWithTextarea(text) {
    var textarea = document.createElement("textarea");
    textarea.value = text;
    textarea.setAttribute("readonly", "");
    textarea.style.position = "fixed";
    textarea.style.opacity = "0";
    document.body.appendChild(textarea);
    textarea.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    document.body.removeChild(textarea);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy command failed"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return copyWithTextarea(text);
      });
    }
    return copyWithTextarea(text);
  }

  function setUpCopyButton(button) {
    var block = document.getElementById(button.getAttribute("data-copy-target"));
    var code = block && block.querySelector("pre");
    if (!code) {
      return;
    }
    var status = document.createElement("span");
    status.className = "copy-status";
    status.setAttribute("role", "status");
    button.insertAdjacentElement("afterend", status);

    function report(message) {
      status.textContent = message;
      window.setTimeout(function () {
        status.textContent = "";
      }, 2500);
    }

    button.addEventListener("click", function () {
      copyText(code.textContent).then(
        function () {
          report("Copied");
        },
        function () {
          report("Copy failed: select the text and press Ctrl+C");
        }
      );
    });
    button.hidden = false;
  }

  // The status line counts renders still queued or running. Every few seconds this
  // requests them from the queries API and reloads the page once none is left.
  var POLL_INTERVAL_MS = 4000;

  function watchPendingRenders(statusLine) {
    var url = statusLine.getAttribute("data-render-poll");

    function reload() {
      document.querySelectorAll("[data-tabs]").forEach(function (area) {
        area.dispatchEvent(new CustomEvent("detail:before-reload"));
      });
      window.location.reload();
    }

    function poll() {
      // A hidden browser tab skips its polls, and the next visible poll catches up.
      if (document.visibilityState === "hidden") {
        window.setTimeout(poll, POLL_INTERVAL_MS);
        return;
      }
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (pending) {
          if (pending.length === 0) {
            reload();
            return;
          }
          statusLine.textContent =
            pending.length +
            (pending.length === 1 ? " render" : " renders") +
            " queued or running; this page refreshes when they finish.";
          window.setTimeout(poll, POLL_INTERVAL_MS);
        })
        .catch(function () {
          // The server may be restarting, so keep the line and try again later.
          window.setTimeout(poll, POLL_INTERVAL_MS);
        });
    }

    window.setTimeout(poll, POLL_INTERVAL_MS);
  }

  document.querySelectorAll("[data-tabs]").forEach(setUpTabs);
  document.querySelectorAll("[data-copy-target]").forEach(setUpCopyButton);
  document.querySelectorAll("[data-render-poll]").forEach(watchPendingRenders);
})();
