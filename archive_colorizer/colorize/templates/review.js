document.querySelectorAll('.compare input').forEach(function (slider) {
  slider.addEventListener('input', function () {
    slider.parentElement.style.setProperty('--pos', slider.value + '%');
  });
});
