// Tabs and copy buttons of the detection page. Without this script every panel stays
// visible and the copy buttons stay hidden, so the page still works without JavaScript.
(function () {
  "use strict";

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

    function select(tab, moveFocus) {
      tabs.forEach(function (other) {
        var selected = other === tab;
        other.setAttribute("aria-selected", String(selected));
        other.tabIndex = selected ? 0 : -1;
        panelOf(other).hidden = !selected;
      });
      if (moveFocus) {
        tab.focus();
      }
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
        if (!step) {
          return;
        }
        event.preventDefault();
        select(tabs[(index + step + tabs.length) % tabs.length], true);
      });
    });

    tabList.hidden = false;
    area.classList.add("tabs-enabled");
    select(tabs[0], false);
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

  document.querySelectorAll("[data-tabs]").forEach(setUpTabs);
  document.querySelectorAll("[data-copy-target]").forEach(setUpCopyButton);
})();
