// A badge's day: choosing a date shows it at once (the form's button does
// the same without JavaScript).
"use strict";

(() => {
  const day = document.getElementById("day");
  if (day && day.form) {
    day.addEventListener("change", () => {
      if (day.value) {
        day.form.requestSubmit();
      }
    });
  }
})();
